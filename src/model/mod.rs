//! The resource types of the management plane and the whole configuration.
//!
//! Owns: one serde type per resource (APIM's camelCase property names, unknown
//! fields rejected), the [`Catalog`] that holds the whole configuration at one
//! revision (it is also the export format shipped to secondaries), and
//! [`Change`], the unit of every write.
//!
//! Imports only `error`. Knows nothing of sled, HTTP or policies.

mod certificate;
pub mod credentials;
pub mod debug_token;
pub mod duration;
pub mod export;
mod gateway;
mod hostname;
mod logger;
pub mod pkcs12;
mod resources;

pub use certificate::*;
pub use gateway::*;
pub use hostname::*;
pub use logger::*;
pub use resources::*;

use crate::error::{Detail, Secret};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the persisted and exported format. Bump it, and add a
/// migration in `store`, whenever a stored type changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// The built-in groups every node has (APIM's system groups).
pub const BUILTIN_GROUPS: [(&str, &str, &str); 3] = [
    (
        "administrators",
        "Administrators",
        "Administrators is a built-in group. Its membership is managed by the system.",
    ),
    (
        "developers",
        "Developers",
        "Developers is a built-in group. Every signed-in developer portal user is a member.",
    ),
    (
        "guests",
        "Guests",
        "Guests is a built-in group: anonymous developer portal visitors.",
    ),
];

/// Where a policy document lives: the four scopes of APIM, and policy
/// fragments (`<fragment>` documents included by id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyScope {
    Global,
    Product(String),
    Api(String),
    Operation(String, String),
    Fragment(String),
}

impl PolicyScope {
    /// The scope as a stable key: `global`, `product/p`, `api/a`, `op/a/o`.
    pub fn key(&self) -> String {
        match self {
            PolicyScope::Global => "global".into(),
            PolicyScope::Product(p) => format!("product/{p}"),
            PolicyScope::Api(a) => format!("api/{a}"),
            PolicyScope::Operation(a, o) => format!("op/{a}/{o}"),
            PolicyScope::Fragment(f) => format!("fragment/{f}"),
        }
    }

    pub fn from_key(key: &str) -> Option<PolicyScope> {
        let mut parts = key.split('/');
        let scope = match (parts.next()?, parts.next(), parts.next()) {
            ("global", None, None) => PolicyScope::Global,
            ("product", Some(p), None) => PolicyScope::Product(p.into()),
            ("api", Some(a), None) => PolicyScope::Api(a.into()),
            ("op", Some(a), Some(o)) => PolicyScope::Operation(a.into(), o.into()),
            ("fragment", Some(f), None) => PolicyScope::Fragment(f.into()),
            _ => return None,
        };
        parts.next().is_none().then_some(scope)
    }
}

/// The whole configuration at one revision. Serialized as-is, it is the
/// export a secondary receives (see `schemaVersion`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Catalog {
    pub schema_version: u32,
    pub revision: u64,
    pub apis: BTreeMap<String, Api>,
    /// api id → operation id → operation
    pub operations: BTreeMap<String, BTreeMap<String, Operation>>,
    /// policy scope key (see [`PolicyScope::key`]) → document; policy
    /// fragments are here too, under `fragment/{id}`.
    pub policies: BTreeMap<String, PolicyDoc>,
    pub products: BTreeMap<String, Product>,
    /// product id → linked api ids
    pub product_apis: BTreeMap<String, BTreeSet<String>>,
    /// product id → group ids that see it in the portal
    pub product_groups: BTreeMap<String, BTreeSet<String>>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// group id → member user ids
    pub group_users: BTreeMap<String, BTreeSet<String>>,
    pub named_values: BTreeMap<String, NamedValue>,
    pub backends: BTreeMap<String, Backend>,
    pub locations: BTreeMap<String, Location>,
    /// Registered self-hosted gateways (secondaries).
    pub gateways: BTreeMap<String, Gateway>,
    /// Loggers `log-to-eventhub` writes to.
    pub loggers: BTreeMap<String, Logger>,
    /// Client certificates (chain and private key) for backends.
    pub certificates: BTreeMap<String, Certificate>,
    /// Custom hostnames of the HTTPS listener (lowercase host → binding).
    pub hostnames: BTreeMap<String, Hostname>,
    /// Their signing keys: persisted on the primary, never exported.
    #[serde(skip)]
    pub gateway_keys: BTreeMap<String, GatewayKeys>,
    /// api id → the API definition it was imported from (kept on the
    /// primary for the portal and for export; not shipped to secondaries).
    #[serde(skip)]
    pub api_specs: BTreeMap<String, ApiSpec>,
    /// user id → portal sign-in credentials (primary only, never exported).
    #[serde(skip)]
    pub user_credentials: BTreeMap<String, UserCredentials>,
    /// The API inspector's token signing key (created by the first
    /// `POST /mgmt/apis/{id}/debug-token`; exported, so secondaries verify
    /// debug tokens too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_key: Option<Secret>,
}

/// One write to the configuration: `Some` puts, `None` (or `false` for a
/// link) deletes. A management request becomes a list of these, applied and
/// persisted atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Api(String, Option<Api>),
    Operation(String, String, Option<Operation>),
    Policy(PolicyScope, Option<PolicyDoc>),
    Product(String, Option<Product>),
    ProductApi(String, String, bool),
    ProductGroup(String, String, bool),
    Subscription(String, Option<Subscription>),
    User(String, Option<User>),
    Group(String, Option<Group>),
    GroupUser(String, String, bool),
    NamedValue(String, Option<NamedValue>),
    Backend(String, Option<Backend>),
    Location(String, Option<Location>),
    Gateway(String, Option<Gateway>),
    GatewayKeys(String, Option<GatewayKeys>),
    ApiSpec(String, Option<ApiSpec>),
    UserCredentials(String, Option<UserCredentials>),
    Logger(String, Option<Logger>),
    Certificate(String, Option<Certificate>),
    Hostname(String, Option<Hostname>),
    DebugKey(Option<Secret>),
}

/// A persisted record could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored record {key:?}: {reason}")]
pub struct RecordError {
    pub key: String,
    pub reason: String,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain data types cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

fn put_or_remove<T>(map: &mut BTreeMap<String, T>, id: &str, value: &Option<T>)
where
    T: Clone,
{
    match value {
        Some(v) => {
            map.insert(id.to_string(), v.clone());
        }
        None => {
            map.remove(id);
        }
    }
}

fn link(map: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str, on: bool) {
    if on {
        map.entry(a.to_string()).or_default().insert(b.to_string());
    } else if let Some(set) = map.get_mut(a) {
        set.remove(b);
        if set.is_empty() {
            map.remove(a);
        }
    }
}

impl Change {
    /// The record this change writes: its key and its bytes (`None` = remove).
    pub fn record(&self) -> (String, Option<Vec<u8>>) {
        fn opt<T: Serialize>(v: &Option<T>) -> Option<Vec<u8>> {
            v.as_ref().map(json)
        }
        fn flag(on: bool) -> Option<Vec<u8>> {
            on.then(|| b"1".to_vec())
        }
        match self {
            Change::Api(id, v) => (format!("api/{id}"), opt(v)),
            Change::Operation(a, o, v) => (format!("op/{a}/{o}"), opt(v)),
            Change::Policy(s, v) => (format!("policy/{}", s.key()), opt(v)),
            Change::Product(id, v) => (format!("product/{id}"), opt(v)),
            Change::ProductApi(p, a, on) => (format!("product-api/{p}/{a}"), flag(*on)),
            Change::ProductGroup(p, g, on) => (format!("product-group/{p}/{g}"), flag(*on)),
            Change::Subscription(id, v) => (format!("subscription/{id}"), opt(v)),
            Change::User(id, v) => (format!("user/{id}"), opt(v)),
            Change::Group(id, v) => (format!("group/{id}"), opt(v)),
            Change::GroupUser(g, u, on) => (format!("group-user/{g}/{u}"), flag(*on)),
            Change::NamedValue(id, v) => (format!("named-value/{id}"), opt(v)),
            Change::Backend(id, v) => (format!("backend/{id}"), opt(v)),
            Change::Location(id, v) => (format!("location/{id}"), opt(v)),
            Change::Gateway(id, v) => (format!("gateway/{id}"), opt(v)),
            Change::GatewayKeys(id, v) => (format!("gateway-keys/{id}"), opt(v)),
            Change::ApiSpec(id, v) => (format!("api-spec/{id}"), opt(v)),
            Change::UserCredentials(id, v) => (format!("user-credentials/{id}"), opt(v)),
            Change::Logger(id, v) => (format!("logger/{id}"), opt(v)),
            Change::Certificate(id, v) => (format!("certificate/{id}"), opt(v)),
            Change::Hostname(host, v) => (format!("hostname/{host}"), opt(v)),
            Change::DebugKey(v) => ("debug-key/signing".to_string(), opt(v)),
        }
    }
}

impl Catalog {
    /// An empty configuration with the built-in groups.
    pub fn new() -> Catalog {
        let mut c = Catalog {
            schema_version: SCHEMA_VERSION,
            ..Catalog::default()
        };
        for change in Catalog::builtin_changes() {
            c.apply(&change);
        }
        c
    }

    /// The changes that create the built-in groups.
    pub fn builtin_changes() -> Vec<Change> {
        BUILTIN_GROUPS
            .iter()
            .map(|(id, name, description)| {
                Change::Group(
                    id.to_string(),
                    Some(Group {
                        display_name: name.to_string(),
                        description: Some(description.to_string()),
                        group_type: GroupType::System,
                        built_in: true,
                        external_id: None,
                    }),
                )
            })
            .collect()
    }

    /// Applies one change in memory.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Api(id, v) => put_or_remove(&mut self.apis, id, v),
            Change::Operation(a, o, v) => {
                let ops = self.operations.entry(a.clone()).or_default();
                put_or_remove(ops, o, v);
                if ops.is_empty() {
                    self.operations.remove(a);
                }
            }
            Change::Policy(s, v) => put_or_remove(&mut self.policies, &s.key(), v),
            Change::Product(id, v) => put_or_remove(&mut self.products, id, v),
            Change::ProductApi(p, a, on) => link(&mut self.product_apis, p, a, *on),
            Change::ProductGroup(p, g, on) => link(&mut self.product_groups, p, g, *on),
            Change::Subscription(id, v) => put_or_remove(&mut self.subscriptions, id, v),
            Change::User(id, v) => put_or_remove(&mut self.users, id, v),
            Change::Group(id, v) => put_or_remove(&mut self.groups, id, v),
            Change::GroupUser(g, u, on) => link(&mut self.group_users, g, u, *on),
            Change::NamedValue(id, v) => put_or_remove(&mut self.named_values, id, v),
            Change::Backend(id, v) => put_or_remove(&mut self.backends, id, v),
            Change::Location(id, v) => put_or_remove(&mut self.locations, id, v),
            Change::Gateway(id, v) => put_or_remove(&mut self.gateways, id, v),
            Change::GatewayKeys(id, v) => put_or_remove(&mut self.gateway_keys, id, v),
            Change::ApiSpec(id, v) => put_or_remove(&mut self.api_specs, id, v),
            Change::UserCredentials(id, v) => put_or_remove(&mut self.user_credentials, id, v),
            Change::Logger(id, v) => put_or_remove(&mut self.loggers, id, v),
            Change::Certificate(id, v) => put_or_remove(&mut self.certificates, id, v),
            Change::Hostname(host, v) => put_or_remove(&mut self.hostnames, host, v),
            Change::DebugKey(v) => self.debug_key = v.clone(),
        }
    }

    /// Reads one persisted record (as written by [`Change::record`]) back
    /// into the catalog.
    pub fn load_record(&mut self, key: &str, bytes: &[u8]) -> Result<(), RecordError> {
        let err = |reason: String| RecordError {
            key: key.to_string(),
            reason,
        };
        fn de<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<Option<T>, String> {
            serde_json::from_slice(b)
                .map(Some)
                .map_err(|e| e.to_string())
        }
        let (kind, rest) = key.split_once('/').ok_or_else(|| err("no kind".into()))?;
        let two = || {
            rest.split_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| err("expected two ids".into()))
        };
        let id = rest.to_string();
        let change = match kind {
            "api" => Change::Api(id, de(bytes).map_err(err)?),
            "op" => {
                let (a, o) = two()?;
                Change::Operation(a, o, de(bytes).map_err(err)?)
            }
            "policy" => {
                let scope = PolicyScope::from_key(rest).ok_or_else(|| err("bad scope".into()))?;
                Change::Policy(scope, de(bytes).map_err(err)?)
            }
            "product" => Change::Product(id, de(bytes).map_err(err)?),
            "product-api" => {
                let (p, a) = two()?;
                Change::ProductApi(p, a, true)
            }
            "product-group" => {
                let (p, g) = two()?;
                Change::ProductGroup(p, g, true)
            }
            "subscription" => Change::Subscription(id, de(bytes).map_err(err)?),
            "user" => Change::User(id, de(bytes).map_err(err)?),
            "group" => Change::Group(id, de(bytes).map_err(err)?),
            "group-user" => {
                let (g, u) = two()?;
                Change::GroupUser(g, u, true)
            }
            "named-value" => Change::NamedValue(id, de(bytes).map_err(err)?),
            "backend" => Change::Backend(id, de(bytes).map_err(err)?),
            "location" => Change::Location(id, de(bytes).map_err(err)?),
            "gateway" => Change::Gateway(id, de(bytes).map_err(err)?),
            "gateway-keys" => Change::GatewayKeys(id, de(bytes).map_err(err)?),
            "api-spec" => Change::ApiSpec(id, de(bytes).map_err(err)?),
            "user-credentials" => Change::UserCredentials(id, de(bytes).map_err(err)?),
            "logger" => Change::Logger(id, de(bytes).map_err(err)?),
            "certificate" => Change::Certificate(id, de(bytes).map_err(err)?),
            "hostname" => Change::Hostname(id, de(bytes).map_err(err)?),
            "debug-key" => Change::DebugKey(de(bytes).map_err(err)?),
            other => return Err(err(format!("unknown kind {other:?}"))),
        };
        self.apply(&change);
        Ok(())
    }

    /// Every record of this catalog, as [`Change::record`] writes them.
    pub fn records(&self) -> Vec<(String, Vec<u8>)> {
        let mut changes = Vec::new();
        for (id, v) in &self.apis {
            changes.push(Change::Api(id.clone(), Some(v.clone())));
        }
        for (a, ops) in &self.operations {
            for (o, v) in ops {
                changes.push(Change::Operation(a.clone(), o.clone(), Some(v.clone())));
            }
        }
        for (k, v) in &self.policies {
            if let Some(scope) = PolicyScope::from_key(k) {
                changes.push(Change::Policy(scope, Some(v.clone())));
            }
        }
        for (id, v) in &self.products {
            changes.push(Change::Product(id.clone(), Some(v.clone())));
        }
        for (p, set) in &self.product_apis {
            changes.extend(
                set.iter()
                    .map(|a| Change::ProductApi(p.clone(), a.clone(), true)),
            );
        }
        for (p, set) in &self.product_groups {
            changes.extend(
                set.iter()
                    .map(|g| Change::ProductGroup(p.clone(), g.clone(), true)),
            );
        }
        for (id, v) in &self.subscriptions {
            changes.push(Change::Subscription(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.users {
            changes.push(Change::User(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.groups {
            changes.push(Change::Group(id.clone(), Some(v.clone())));
        }
        for (g, set) in &self.group_users {
            changes.extend(
                set.iter()
                    .map(|u| Change::GroupUser(g.clone(), u.clone(), true)),
            );
        }
        for (id, v) in &self.named_values {
            changes.push(Change::NamedValue(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.backends {
            changes.push(Change::Backend(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.locations {
            changes.push(Change::Location(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.gateways {
            changes.push(Change::Gateway(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.gateway_keys {
            changes.push(Change::GatewayKeys(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.api_specs {
            changes.push(Change::ApiSpec(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.user_credentials {
            changes.push(Change::UserCredentials(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.loggers {
            changes.push(Change::Logger(id.clone(), Some(v.clone())));
        }
        for (id, v) in &self.certificates {
            changes.push(Change::Certificate(id.clone(), Some(v.clone())));
        }
        for (host, v) in &self.hostnames {
            changes.push(Change::Hostname(host.clone(), Some(v.clone())));
        }
        if let Some(k) = &self.debug_key {
            changes.push(Change::DebugKey(Some(k.clone())));
        }
        changes
            .iter()
            .filter_map(|c| {
                let (k, v) = c.record();
                v.map(|v| (k, v))
            })
            .collect()
    }

    /// Whether nothing but the built-in groups is configured.
    pub fn is_pristine(&self) -> bool {
        self.apis.is_empty()
            && self.products.is_empty()
            && self.subscriptions.is_empty()
            && self.users.is_empty()
            && self.named_values.is_empty()
            && self.backends.is_empty()
            && self.policies.is_empty()
            && self.gateways.is_empty()
            && self.loggers.is_empty()
            && self.certificates.is_empty()
            && self.hostnames.is_empty()
            && self.groups.values().all(|g| g.built_in)
    }

    /// Ids of the products that contain `api_id`.
    pub fn products_of_api<'a>(&'a self, api_id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.product_apis
            .iter()
            .filter(move |(_, apis)| apis.contains(api_id))
            .map(|(p, _)| p.as_str())
    }

    /// How many of product `product`'s `subscriptionsLimit` places user
    /// `uid` holds: their subscriptions to it that are not cancelled,
    /// rejected or expired, leaving out subscription `except` (the one
    /// being replaced). The management API and the portal count alike.
    pub fn held_subscriptions(&self, uid: &str, product: &str, except: Option<&str>) -> usize {
        let owner = format!("/users/{uid}");
        self.subscriptions
            .iter()
            .filter(|(sid, s)| {
                Some(sid.as_str()) != except
                    && s.state.holds_a_place()
                    && s.owner_id.as_deref() == Some(owner.as_str())
                    && matches!(
                        SubscriptionScope::parse(&s.scope),
                        Some(SubscriptionScope::Product(p)) if p == product
                    )
            })
            .count()
    }

    /// The subscription (id) that holds `key` as primary or secondary key
    /// (compared in constant time, both keys of each).
    pub fn subscription_with_key(&self, key: &str) -> Option<&str> {
        self.subscriptions
            .iter()
            .find(|(_, s)| s.primary_key.matches(key) | s.secondary_key.matches(key))
            .map(|(id, _)| id.as_str())
    }
}

/// Checks a resource id: `^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`.
pub fn validate_id(target: &str, id: &str) -> Result<(), Detail> {
    let ok = id.len() <= 80
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Detail::new(
            target,
            format!(
                "invalid id {:?}: 1-80 characters, letters, digits, '.', '_' or '-', starting with a letter or digit",
                truncate(id, 100)
            ),
        ))
    }
}

/// `s` cut to at most `n` characters, for error messages.
pub fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut c = Catalog::new();
        c.apply(&Change::Api(
            "echo".into(),
            Some(Api {
                display_name: "Echo".into(),
                path: "echo".into(),
                ..Api::default()
            }),
        ));
        c.apply(&Change::ProductApi("starter".into(), "echo".into(), true));
        c.apply(&Change::Policy(
            PolicyScope::Operation("echo".into(), "get".into()),
            Some(PolicyDoc {
                xml: "<policies/>".into(),
            }),
        ));
        let mut back = Catalog::new();
        for (k, v) in c.records() {
            back.load_record(&k, &v).unwrap();
        }
        assert_eq!(back, c);
    }

    #[test]
    fn ids() {
        assert!(validate_id("id", "echo-api_1.v2").is_ok());
        assert!(validate_id("id", "").is_err());
        assert!(validate_id("id", "-x").is_err());
        assert!(validate_id("id", "a/b").is_err());
        assert!(validate_id("id", &"a".repeat(81)).is_err());
    }

    #[test]
    fn scope_keys() {
        for s in [
            PolicyScope::Global,
            PolicyScope::Product("p".into()),
            PolicyScope::Api("a".into()),
            PolicyScope::Operation("a".into(), "o".into()),
            PolicyScope::Fragment("f".into()),
        ] {
            assert_eq!(PolicyScope::from_key(&s.key()), Some(s));
        }
        assert_eq!(PolicyScope::from_key("api/a/b"), None);
    }
}
