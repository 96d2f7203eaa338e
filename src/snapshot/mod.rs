//! Compiles the whole configuration into one immutable [`Snapshot`].
//!
//! Owns: turning a [`Catalog`] into what the gateway reads: the API route
//! table (longest path prefix on segment boundaries, one hash lookup per
//! path segment, so 10k APIs cost what 10 do), each API's operation trie,
//! the subscription-key index, resolved backend URLs, the policy documents
//! per scope, and the disabled regions. A configuration that does not
//! compile is refused with every problem named; the running snapshot is
//! never replaced by a broken one.
//!
//! May use: `model`, `policy`, `expr`, `tls` (the SNI table of custom
//! hostnames). Never the store or HTTP servers.

pub mod backends;
pub mod hostnames;
pub mod routes;

use crate::error::Detail;
use crate::model::{
    Catalog, PolicyScope, Protocol, SubscriptionScope, SubscriptionState, UserState,
};
use crate::policy::builtin::Doc;
use arc_swap::ArcSwap;
use http::HeaderName;
use routes::{OperationTable, Template};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A backend base URL, split once so a request only concatenates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix without a trailing slash (may be empty).
    pub path: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Option<BaseUrl> {
        let uri: http::Uri = url.parse().ok()?;
        let scheme = uri.scheme()?.clone();
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return None;
        }
        Some(BaseUrl {
            scheme,
            authority: uri.authority()?.clone(),
            path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The URL for `rest` (the request path after the API path, "" or
    /// starting with '/') and the request's query string.
    pub fn join(&self, rest: &str, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let mut pq = String::with_capacity(
            self.path.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1,
        );
        pq.push_str(&self.path);
        pq.push_str(rest);
        if pq.is_empty() {
            pq.push('/');
        }
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

/// A compiled operation.
#[derive(Debug)]
pub struct OperationEntry {
    pub id: Arc<str>,
    pub display_name: Arc<str>,
    pub method: Arc<str>,
    pub url_template: Arc<str>,
    pub policy: Option<Arc<Doc>>,
    /// The documented responses (examples for `mock-response`).
    pub responses: Arc<Vec<serde_json::Value>>,
    /// `context.Operation`, built once here instead of per request.
    pub info: Arc<crate::expr::context::OperationInfo>,
}

/// A compiled API.
#[derive(Debug)]
pub struct ApiEntry {
    pub id: Arc<str>,
    pub display_name: Arc<str>,
    /// Without leading/trailing slashes.
    pub path: Arc<str>,
    pub service_url: Option<BaseUrl>,
    pub http: bool,
    pub https: bool,
    pub subscription_required: bool,
    pub key_header: HeaderName,
    pub key_query: Arc<str>,
    pub operations: Vec<OperationEntry>,
    pub table: OperationTable,
    /// Indexes into [`Snapshot::products`] of products containing this API.
    pub products: Vec<usize>,
    /// The open product (subscriptionRequired = false) containing this API.
    pub open_product: Option<usize>,
    pub policy: Option<Arc<Doc>>,
    /// `context.Api`, built once here instead of per request.
    pub info: Arc<crate::expr::context::ApiInfo>,
}

/// A compiled product.
#[derive(Debug)]
pub struct ProductEntry {
    pub id: Arc<str>,
    pub display_name: Arc<str>,
    pub subscription_required: bool,
    pub approval_required: bool,
    pub subscriptions_limit: Option<i64>,
    pub policy: Option<Arc<Doc>>,
    /// The groups that see the product, as (id, name): `context.Product.Groups`.
    pub groups: Vec<(String, String)>,
    /// `context.Product`, built once here instead of per request.
    pub info: Arc<crate::expr::context::ProductInfo>,
}

/// A user as the gateway sees it (`context.User`).
#[derive(Debug)]
pub struct UserEntry {
    pub id: Arc<str>,
    pub email: Arc<str>,
    pub first_name: Arc<str>,
    pub last_name: Arc<str>,
    /// The user's groups as (id, name), `developers` included, as APIM
    /// counts every user a developer: `context.User.Groups`.
    pub groups: Vec<(String, String)>,
}

/// What a subscription key grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    AllApis,
    Api(usize),
    Product(usize),
}

/// One entry of the key index: an active subscription's key.
#[derive(Debug)]
pub struct KeyEntry {
    pub subscription_id: Arc<str>,
    pub display_name: Arc<str>,
    pub scope: KeyScope,
    /// Index into [`Snapshot::users`].
    pub user: Option<usize>,
    pub primary: bool,
}

/// The compiled, immutable configuration the gateway serves.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub revision: u64,
    pub apis: Vec<ApiEntry>,
    /// lowercase API path → index into `apis`.
    by_path: HashMap<String, usize>,
    pub products: Vec<ProductEntry>,
    pub users: Vec<UserEntry>,
    /// SHA-256 of each key → its subscription: a lookup's timing depends
    /// on the digest of the presented key, never on how much of a stored
    /// key it shares, and the index holds no key in clear.
    keys: HashMap<[u8; 32], KeyEntry>,
    pub backends: HashMap<String, BaseUrl>,
    /// The same backends as `context` URLs (for `set-backend-service`).
    pub backend_urls: Arc<HashMap<String, crate::expr::context::Url>>,
    /// Every backend compiled: credentials, breaker rules, pool members.
    pub backend_defs: Arc<backends::Backends>,
    /// The roots backend TLS trusts (webpki plus stored CA certificates).
    pub backend_trust: Arc<backends::Trust>,
    pub global_policy: Option<Arc<Doc>>,
    disabled_regions: HashSet<String>,
    /// Logger definitions (`log-to-eventhub`); the gateway's runtime
    /// follows them.
    pub loggers: Arc<crate::telemetry::loggers::LoggerDefs>,
    /// The stored CA certificates and CRLs prepared for client
    /// certificates (`validate-client-certificate`, `Verify()`).
    pub client_trust: Arc<crate::policy::builtin::validate_client_certificate::Trust>,
    /// Custom hostnames of the HTTPS listener (certificates by SNI).
    pub hostnames: Arc<crate::tls::sni::HostTable>,
    /// The API inspector's debug-token key (`None` until a first token).
    pub debug_key: Option<Arc<crate::model::debug_token::DebugKey>>,
    /// Values of secret named values: a trace masks them wherever they
    /// appear.
    pub secret_values: Arc<Vec<String>>,
}

/// The API a request path selects, and the path after the API's path.
pub struct ApiMatch<'s, 'p> {
    pub api: &'s ApiEntry,
    pub index: usize,
    /// "" or starting with '/'.
    pub rest: &'p str,
}

impl Snapshot {
    /// The API whose path is the longest prefix of `path` on a segment
    /// boundary (ASCII case-insensitive).
    pub fn match_api<'s, 'p>(&'s self, path: &'p str) -> Option<ApiMatch<'s, 'p>> {
        let trimmed = path.trim_start_matches('/');
        let lower = trimmed.to_ascii_lowercase();
        let mut end = lower.len();
        loop {
            let candidate = lower[..end].trim_end_matches('/');
            if let Some(&index) = self.by_path.get(candidate) {
                // The rest is "" or starts with '/': for the root API (path
                // "") it is the whole request path.
                let rest = if candidate.is_empty() {
                    path
                } else {
                    &trimmed[candidate.len()..]
                };
                return Some(ApiMatch {
                    api: &self.apis[index],
                    index,
                    rest,
                });
            }
            if end == 0 {
                return None;
            }
            end = lower[..end].rfind('/').unwrap_or(0);
        }
    }

    /// The active subscription holding `key`.
    pub fn key(&self, key: &str) -> Option<&KeyEntry> {
        self.keys.get(&key_digest(key))
    }

    /// Whether `key_scope` covers API `api_index`.
    pub fn scope_covers(&self, scope: KeyScope, api_index: usize) -> bool {
        match scope {
            KeyScope::AllApis => true,
            KeyScope::Api(a) => a == api_index,
            KeyScope::Product(p) => self.apis[api_index].products.binary_search(&p).is_ok(),
        }
    }

    /// Whether gateways in `region` are disabled (`/mgmt/locations`).
    pub fn region_disabled(&self, region: &str) -> bool {
        self.disabled_regions.contains(region)
    }

    /// Number of keys in the index (two per active subscription).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

/// The index key of a subscription key: its SHA-256.
fn key_digest(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref());
    out
}

/// Compiles the policy document of `scope`, if there is one: named values
/// substituted, fragments inlined, expressions bound.
fn policy_of(
    catalog: &Catalog,
    certs: &backends::ClientCerts,
    trust: &Arc<crate::policy::builtin::validate_client_certificate::Trust>,
    options: &Options,
    scope: PolicyScope,
    problems: &mut Vec<Detail>,
) -> Option<Arc<Doc>> {
    let key = scope.key();
    let doc = catalog.policies.get(&key)?;
    let named = |name: &str| {
        catalog
            .named_values
            .values()
            .find(|nv| nv.display_name.eq_ignore_ascii_case(name))
            .map(|nv| nv.value.expose().to_string())
    };
    let fragments = |id: &str| {
        catalog
            .policies
            .get(&format!("fragment/{id}"))
            .map(|d| d.xml.clone())
    };
    let loggers = |id: &str| catalog.loggers.contains_key(id);
    let lookup = |r: crate::policy::builtin::authentication_certificate::CertRef<'_>| {
        backends::find_cert(certs, r)
    };
    match crate::policy::builtin::compile_document_trust(
        &doc.xml,
        &named,
        &fragments,
        &loggers,
        Some(&lookup),
        options.dapr_sidecar.as_ref(),
        Some(trust.clone()),
    ) {
        Ok(d) => Some(Arc::new(d)),
        Err(diags) => {
            for d in diags {
                problems.push(Detail::new(format!("policies/{key}"), d.to_string()));
            }
            None
        }
    }
}

/// What the node's configuration file adds to compiling a catalog.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `[dapr] sidecar_url`: without it the Dapr policies do not compile.
    pub dapr_sidecar: Option<crate::expr::context::Url>,
}

impl Options {
    /// The options `settings` asks for (validated at load).
    pub fn from_settings(settings: &crate::config::Settings) -> Options {
        Options {
            dapr_sidecar: settings
                .dapr
                .sidecar_url
                .as_deref()
                .and_then(|u| crate::expr::context::Url::parse(u.trim())),
        }
    }
}

/// Compiles `catalog`. On failure returns every problem, each with a target
/// naming the resource (`apis/{id}/operations/{op}.urlTemplate`, ...).
pub fn compile(catalog: &Catalog) -> Result<Snapshot, Vec<Detail>> {
    compile_with(catalog, &Options::default())
}

/// [`compile`] with the node's [`Options`].
pub fn compile_with(catalog: &Catalog, options: &Options) -> Result<Snapshot, Vec<Detail>> {
    let mut problems = Vec::new();
    let mut snap = Snapshot {
        revision: catalog.revision,
        ..Snapshot::default()
    };
    let certs = backends::client_certs(catalog, &mut problems);
    snap.client_trust = Arc::new(
        crate::policy::builtin::validate_client_certificate::Trust::new(&catalog.certificates),
    );
    let trust = snap.client_trust.clone();

    let known: std::collections::HashSet<String> = catalog
        .named_values
        .values()
        .map(|nv| nv.display_name.to_ascii_lowercase())
        .collect();
    let mut fragments = std::collections::BTreeMap::new();
    for (scope_key, doc) in &catalog.policies {
        let checked = match scope_key.strip_prefix("fragment/") {
            Some(id) => {
                fragments.insert(id.to_string(), doc.xml.clone());
                crate::policy::check_fragment(&doc.xml)
            }
            None => crate::policy::check_document(&doc.xml),
        };
        let unresolved = crate::policy::check_references(
            &doc.xml,
            |name| known.contains(&name.to_ascii_lowercase()),
            |id| catalog.policies.contains_key(&format!("fragment/{id}")),
        );
        for d in checked.err().into_iter().flatten().chain(unresolved) {
            problems.push(Detail::new(format!("policies/{scope_key}"), d.to_string()));
        }
    }
    if let Some(cycle) = crate::policy::fragment_cycle(&fragments) {
        problems.push(Detail::new(
            format!("policies/fragment/{}", cycle[0]),
            format!("policy fragments include each other: {}", cycle.join(" → ")),
        ));
    }

    // Documents that do not check are reported above; compile the rest.
    if problems.is_empty() {
        snap.global_policy = policy_of(
            catalog,
            &certs,
            &trust,
            options,
            PolicyScope::Global,
            &mut problems,
        );
    }
    let compile_policies = problems.is_empty();

    let mut product_index = HashMap::new();
    for (id, p) in &catalog.products {
        product_index.insert(id.as_str(), snap.products.len());
        let groups: Vec<(String, String)> = catalog
            .product_groups
            .get(id)
            .map(|set| set.iter().map(|g| group_pair(catalog, g)).collect())
            .unwrap_or_default();
        let info = Arc::new(crate::expr::context::ProductInfo {
            id: id.clone(),
            name: p.display_name.clone(),
            approval_required: p.approval_required,
            subscription_required: p.subscription_required,
            subscriptions_limit: p.subscriptions_limit.map(|l| l as i64),
            state: "published".into(),
            groups: groups.clone(),
        });
        snap.products.push(ProductEntry {
            info,
            id: id.as_str().into(),
            display_name: p.display_name.as_str().into(),
            subscription_required: p.subscription_required,
            approval_required: p.approval_required,
            subscriptions_limit: p.subscriptions_limit.map(|l| l as i64),
            groups,
            policy: if compile_policies {
                policy_of(
                    catalog,
                    &certs,
                    &trust,
                    options,
                    PolicyScope::Product(id.clone()),
                    &mut problems,
                )
            } else {
                None
            },
        });
    }

    let mut api_index = HashMap::new();
    for (id, api) in &catalog.apis {
        let target = format!("apis/{id}");
        let service_url = match &api.service_url {
            Some(url) => match BaseUrl::parse(url) {
                Some(b) => Some(b),
                None => {
                    problems.push(Detail::new(
                        format!("{target}.serviceUrl"),
                        "not an http(s) URL",
                    ));
                    None
                }
            },
            None => None,
        };
        let key_header =
            match HeaderName::try_from(api.subscription_key_parameter_names.header.as_str()) {
                Ok(h) => h,
                Err(_) => {
                    problems.push(Detail::new(
                        format!("{target}.subscriptionKeyParameterNames.header"),
                        "not a valid header name",
                    ));
                    continue;
                }
            };
        let mut operations = Vec::new();
        let mut templates = Vec::new();
        let mut seen = HashMap::new();
        for (op_id, op) in catalog.operations.get(id).into_iter().flatten() {
            let op_target = format!("{target}/operations/{op_id}.urlTemplate");
            match Template::parse(&op.url_template) {
                Ok(t) => {
                    let sig = (op.method.clone(), t.shape());
                    if let Some(other) = seen.insert(sig, op_id.clone()) {
                        problems.push(Detail::new(
                            op_target,
                            format!(
                                "operation {other:?} already has method {} and an equivalent template",
                                op.method
                            ),
                        ));
                        continue;
                    }
                    templates.push((op.method.clone(), t));
                    operations.push(OperationEntry {
                        info: Arc::new(crate::expr::context::OperationInfo {
                            id: op_id.clone(),
                            name: op.display_name.clone(),
                            method: op.method.clone(),
                            url_template: op.url_template.clone(),
                        }),
                        id: op_id.as_str().into(),
                        display_name: op.display_name.as_str().into(),
                        method: op.method.as_str().into(),
                        url_template: op.url_template.as_str().into(),
                        policy: if compile_policies {
                            policy_of(
                                catalog,
                                &certs,
                                &trust,
                                options,
                                PolicyScope::Operation(id.clone(), op_id.clone()),
                                &mut problems,
                            )
                        } else {
                            None
                        },
                        responses: Arc::new(op.responses.clone()),
                    });
                }
                Err(e) => problems.push(Detail::new(op_target, e)),
            }
        }
        let mut products: Vec<usize> = catalog
            .products_of_api(id)
            .filter_map(|p| product_index.get(p).copied())
            .collect();
        products.sort_unstable();
        let open_product = products
            .iter()
            .copied()
            .find(|&p| !catalog.products[snap.products[p].id.as_ref()].subscription_required);
        let lower = api.path.to_ascii_lowercase();
        if let Some(&other) = snap.by_path.get(&lower) {
            let other: &ApiEntry = &snap.apis[other];
            problems.push(Detail::new(
                format!("{target}.path"),
                format!(
                    "APIs {:?} and {id:?} have the same path {:?}; API paths must be unique",
                    other.id.as_ref(),
                    api.path
                ),
            ));
            continue;
        }
        api_index.insert(id.as_str(), snap.apis.len());
        snap.by_path.insert(lower, snap.apis.len());
        let info = Arc::new(crate::expr::context::ApiInfo {
            id: id.clone(),
            name: api.display_name.clone(),
            path: api.path.clone(),
            protocols: [(Protocol::Http, "http"), (Protocol::Https, "https")]
                .iter()
                .filter(|(p, _)| api.protocols.contains(p))
                .map(|(_, p)| p.to_string())
                .collect(),
            service_url: service_url.as_ref().and_then(|u: &BaseUrl| {
                crate::expr::context::Url::parse(&format!(
                    "{}://{}{}",
                    u.scheme, u.authority, u.path
                ))
            }),
            header_name: key_header.as_str().to_string(),
            query_name: api.subscription_key_parameter_names.query.clone(),
            ..Default::default()
        });
        snap.apis.push(ApiEntry {
            info,
            id: id.as_str().into(),
            display_name: api.display_name.as_str().into(),
            path: api.path.as_str().into(),
            service_url,
            http: api.protocols.contains(&Protocol::Http),
            https: api.protocols.contains(&Protocol::Https),
            subscription_required: api.subscription_required,
            key_header,
            key_query: api.subscription_key_parameter_names.query.as_str().into(),
            operations,
            table: OperationTable::build(templates),
            products,
            open_product,
            policy: if compile_policies {
                policy_of(
                    catalog,
                    &certs,
                    &trust,
                    options,
                    PolicyScope::Api(id.clone()),
                    &mut problems,
                )
            } else {
                None
            },
        });
    }

    let mut user_index = HashMap::new();
    for (id, u) in &catalog.users {
        if u.state != UserState::Active {
            continue;
        }
        user_index.insert(id.as_str(), snap.users.len());
        snap.users.push(UserEntry {
            id: id.as_str().into(),
            email: u.email.as_str().into(),
            first_name: u.first_name.as_str().into(),
            last_name: u.last_name.as_str().into(),
            groups: user_groups(catalog, id),
        });
    }

    for (id, s) in &catalog.subscriptions {
        if s.state != SubscriptionState::Active {
            continue;
        }
        let scope = match SubscriptionScope::parse(&s.scope) {
            Some(SubscriptionScope::AllApis) => KeyScope::AllApis,
            Some(SubscriptionScope::Api(a)) => match api_index.get(a.as_str()) {
                Some(&i) => KeyScope::Api(i),
                None => continue,
            },
            Some(SubscriptionScope::Product(p)) => match product_index.get(p.as_str()) {
                Some(&i) => KeyScope::Product(i),
                None => continue,
            },
            None => continue,
        };
        // A blocked (or otherwise inactive) owner cannot call APIs.
        let user = match s.owner_id.as_deref().and_then(crate::model::user_of_owner) {
            Some(uid) => match user_index.get(uid) {
                Some(&i) => Some(i),
                None => continue,
            },
            None => None,
        };
        for (key, primary) in [(&s.primary_key, true), (&s.secondary_key, false)] {
            if key.is_empty() {
                continue;
            }
            let entry = KeyEntry {
                subscription_id: id.as_str().into(),
                display_name: s.display_name.as_str().into(),
                scope,
                user,
                primary,
            };
            if snap.keys.insert(key_digest(key.expose()), entry).is_some() {
                problems.push(Detail::new(
                    format!("subscriptions/{id}"),
                    "a key of this subscription is already used by another subscription",
                ));
            }
        }
    }

    let backend_defs = backends::compile(catalog, &certs, &mut problems);
    snap.backend_trust = backends::trust(catalog, &mut problems);
    let mut backend_urls = HashMap::new();
    for (id, b) in &catalog.backends {
        if b.url.is_empty() && b.kind == crate::model::BackendType::Pool {
            // A pool without a URL stands for its first member's.
            let first = match backend_defs.get(id).map(|d| &d.kind) {
                Some(backends::Kind::Pool(m)) => m.first().map(|m| m.id.clone()),
                _ => None,
            };
            if let Some(u) = first
                .and_then(|m| catalog.backends.get(&m))
                .and_then(|m| crate::expr::context::Url::parse(&m.url))
            {
                backend_urls.insert(id.clone(), u);
            }
            continue;
        }
        match BaseUrl::parse(&b.url) {
            Some(url) => {
                snap.backends.insert(id.clone(), url);
                if let Some(u) = crate::expr::context::Url::parse(&b.url) {
                    backend_urls.insert(id.clone(), u);
                }
            }
            None => problems.push(Detail::new(
                format!("backends/{id}.url"),
                "not an http(s) URL",
            )),
        }
    }

    snap.backend_urls = Arc::new(backend_urls);
    snap.backend_defs = Arc::new(backend_defs);
    let mut loggers = crate::telemetry::loggers::LoggerDefs::new();
    for (id, l) in &catalog.loggers {
        match l.sink() {
            Some(s) => {
                loggers.insert(id.clone(), s);
            }
            None => problems.push(Detail::new(format!("loggers/{id}"), "not a valid logger")),
        }
    }
    snap.loggers = Arc::new(loggers);
    snap.hostnames = Arc::new(hostnames::compile(catalog, &certs, &mut problems));
    snap.debug_key = catalog
        .debug_key
        .as_ref()
        .map(|k| Arc::new(crate::model::debug_token::DebugKey::new(k)));
    snap.secret_values = Arc::new(
        catalog
            .named_values
            .values()
            .filter(|nv| nv.secret)
            .map(|nv| nv.value.expose().to_string())
            .collect(),
    );
    snap.disabled_regions = catalog
        .locations
        .iter()
        .filter(|(_, l)| l.disable_gateway)
        .map(|(r, _)| r.clone())
        .collect();

    if problems.is_empty() {
        Ok(snap)
    } else {
        Err(problems)
    }
}

/// The one place the running snapshot lives. Readers `load_full()` once per
/// request and keep that `Arc` to the end; writers publish whole snapshots.
#[derive(Default)]
pub struct SnapshotHandle {
    current: ArcSwap<Snapshot>,
    /// The revision in service, for whoever waits for the next one
    /// (the primary's long-polls).
    revision: tokio::sync::watch::Sender<u64>,
    /// What every later compile of this node uses.
    options: Options,
}

impl SnapshotHandle {
    pub fn new(snapshot: Snapshot) -> SnapshotHandle {
        let (revision, _) = tokio::sync::watch::channel(snapshot.revision);
        SnapshotHandle {
            current: ArcSwap::from_pointee(snapshot),
            revision,
            options: Options::default(),
        }
    }

    /// A handle whose later compiles use `options`.
    pub fn with_options(snapshot: Snapshot, options: Options) -> SnapshotHandle {
        SnapshotHandle {
            options,
            ..SnapshotHandle::new(snapshot)
        }
    }

    /// The options this node compiles with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes `next` unless a newer revision is already in place (two
    /// writers finishing out of order never move the gateway backwards).
    pub fn publish(&self, next: Arc<Snapshot>) {
        let prev = self.current.rcu(|cur| {
            if cur.revision < next.revision {
                next.clone()
            } else {
                cur.clone()
            }
        });
        if prev.revision < next.revision {
            self.revision.send_replace(next.revision);
        }
    }

    /// Puts `next` in service whatever its revision (a secondary follows
    /// its primary, even one restored to an older revision).
    pub fn replace(&self, next: Arc<Snapshot>) {
        let revision = next.revision;
        self.current.store(next);
        self.revision.send_replace(revision);
    }

    /// Wakes on every published revision.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

/// A group as `context` shows it: (id, display name).
fn group_pair(catalog: &Catalog, id: &str) -> (String, String) {
    let name = catalog
        .groups
        .get(id)
        .map_or_else(|| id.to_string(), |g| g.display_name.clone());
    (id.to_string(), name)
}

/// The groups of user `uid`: `developers` and every group listing them.
fn user_groups(catalog: &Catalog, uid: &str) -> Vec<(String, String)> {
    let mut out = vec![group_pair(catalog, "developers")];
    for (g, members) in &catalog.group_users {
        if g != "developers" && members.contains(uid) {
            out.push(group_pair(catalog, g));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Api, Change};

    fn catalog_with(paths: &[(&str, &str)]) -> Catalog {
        let mut c = Catalog::new();
        for (id, path) in paths {
            c.apply(&Change::Api(
                id.to_string(),
                Some(Api {
                    path: path.to_string(),
                    ..Api::default()
                }),
            ));
        }
        c
    }

    #[test]
    fn longest_prefix_on_segment_boundary() {
        let c = catalog_with(&[("root", ""), ("a", "a"), ("ab", "a/b"), ("x", "Echo")]);
        let s = compile(&c).unwrap();
        let m = s.match_api("/a/b/c?").unwrap();
        assert_eq!((m.api.id.as_ref(), m.rest), ("ab", "/c?"));
        let m = s.match_api("/a/bc").unwrap();
        assert_eq!((m.api.id.as_ref(), m.rest), ("a", "/bc"));
        let m = s.match_api("/abc").unwrap();
        assert_eq!((m.api.id.as_ref(), m.rest), ("root", "/abc"));
        let m = s.match_api("/echo/Z").unwrap();
        assert_eq!((m.api.id.as_ref(), m.rest), ("x", "/Z"));
        let m = s.match_api("/a/").unwrap();
        assert_eq!((m.api.id.as_ref(), m.rest), ("a", "/"));
    }

    #[test]
    fn no_root_api_means_no_match() {
        let s = compile(&catalog_with(&[("a", "a")])).unwrap();
        assert!(s.match_api("/b").is_none());
        assert!(s.match_api("/").is_none());
    }

    #[test]
    fn duplicate_paths_do_not_compile() {
        let e = compile(&catalog_with(&[("a", "x"), ("b", "X")])).unwrap_err();
        assert!(e[0].target.ends_with(".path"), "{e:?}");
    }

    #[test]
    fn join_backend_urls() {
        let b = BaseUrl::parse("http://h:1/base/").unwrap();
        assert_eq!(
            b.join("/x/y", Some("q=1")).unwrap().to_string(),
            "http://h:1/base/x/y?q=1"
        );
        let b = BaseUrl::parse("http://h:1").unwrap();
        assert_eq!(b.join("", None).unwrap().to_string(), "http://h:1/");
    }

    #[test]
    fn ten_thousand_apis_compile_and_match() {
        let paths: Vec<(String, String)> = (0..10_000)
            .map(|i| (format!("api{i}"), format!("svc/{i}/v1")))
            .collect();
        let refs: Vec<(&str, &str)> = paths
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let s = compile(&catalog_with(&refs)).unwrap();
        let m = s.match_api("/svc/9876/v1/orders/1").unwrap();
        assert_eq!(m.api.id.as_ref(), "api9876");
        assert_eq!(m.rest, "/orders/1");
    }
}
