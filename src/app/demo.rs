//! `serve --demo`: seeds an empty store with something to call.
//!
//! Seeds (only when the store holds nothing but the built-in groups): the
//! `echo` API on the built-in echo backend with GET/POST/PUT/DELETE `/*`
//! operations and a policy that names the answering region and gateway
//! (`x-turnpike-region`, `x-turnpike-gateway`: handy in a cluster), a
//! published `starter` product containing it, a `demo` user (no portal
//! password) and an active subscription, and a portal administrator
//! (`admin@example.com` in `administrators`) whose random password is
//! written to `data_dir/portal-admin.password` (0600) and never printed.
//! On a store that is not empty it seeds
//! nothing; it only re-points the seeded `echo` API at this run's echo
//! backend (whose port changes on every start) if that API is still the
//! untouched demo one.

use crate::error::{ApiError, Secret};
use crate::mgmt::{commit, MgmtState};
use crate::model::{
    credentials, Api, Catalog, Change, Operation, PolicyDoc, PolicyScope, Product, ProductState,
    Subscription, SubscriptionState, User, UserCredentials, UserState,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The seeded portal administrator's user id and email.
const ADMIN_ID: &str = "admin";
const ADMIN_EMAIL: &str = "admin@example.com";

/// The file (in the data directory) holding the seeded administrator's
/// portal password.
pub const ADMIN_PASSWORD_FILE: &str = "portal-admin.password";

/// Description that marks the seeded API.
const DEMO_DESCRIPTION: &str = "Echoes every request back as JSON (turnpike demo).";

/// What the demo prints for the user.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// The subscription key to call the echo API with.
    pub key: String,
    /// Whether this run seeded the store.
    pub seeded: bool,
    /// Where the seeded portal administrator's password is (while that
    /// file and the administrator exist).
    pub admin_password_file: Option<PathBuf>,
}

fn echo_api(echo: SocketAddr) -> Api {
    Api {
        display_name: "Echo API".into(),
        description: Some(DEMO_DESCRIPTION.into()),
        path: "echo".into(),
        service_url: Some(format!("http://{echo}")),
        ..Api::default()
    }
}

/// The echo API's policy: which region and gateway answered.
const ECHO_POLICY: &str = r#"<policies>
  <inbound><base /></inbound>
  <backend><base /></backend>
  <outbound>
    <base />
    <set-header name="x-turnpike-region" exists-action="override">
      <value>@(context.Deployment.Region)</value>
    </set-header>
    <set-header name="x-turnpike-gateway" exists-action="override">
      <value>@(context.Deployment.GatewayId)</value>
    </set-header>
  </outbound>
  <on-error><base /></on-error>
</policies>
"#;

/// The portal administrator: a user in `developers` and `administrators`
/// with the password whose argon2 hash is `hash`.
fn admin_changes(hash: String, now: &str) -> Vec<Change> {
    vec![
        Change::User(
            ADMIN_ID.into(),
            Some(User {
                email: ADMIN_EMAIL.into(),
                first_name: "Portal".into(),
                last_name: "Administrator".into(),
                state: UserState::Active,
                note: Some("Seeded by turnpike serve --demo.".into()),
                registration_date: now.into(),
                password: None,
            }),
        ),
        Change::UserCredentials(
            ADMIN_ID.into(),
            Some(UserCredentials {
                password_hash: Secret::new(hash),
                session_epoch: 0,
            }),
        ),
        Change::GroupUser("developers".into(), ADMIN_ID.into(), true),
        Change::GroupUser("administrators".into(), ADMIN_ID.into(), true),
    ]
}

fn seed_changes(echo: SocketAddr, key: &str, secondary: &str, now: &str) -> Vec<Change> {
    let mut changes = vec![
        Change::Api("echo".into(), Some(echo_api(echo))),
        Change::Policy(
            PolicyScope::Api("echo".into()),
            Some(PolicyDoc {
                xml: ECHO_POLICY.into(),
            }),
        ),
    ];
    for method in ["GET", "POST", "PUT", "DELETE"] {
        changes.push(Change::Operation(
            "echo".into(),
            method.to_ascii_lowercase(),
            Some(Operation {
                display_name: format!("{method} anything"),
                method: method.into(),
                url_template: "/*".into(),
                description: Some(format!("Echoes any {method} request.")),
                template_parameters: vec![],
                request: None,
                responses: vec![],
                tags: vec![],
            }),
        ));
    }
    changes.push(Change::Product(
        "starter".into(),
        Some(Product {
            display_name: "Starter".into(),
            description: Some("Try the APIs of this appliance.".into()),
            terms: None,
            subscription_required: true,
            approval_required: false,
            subscriptions_limit: Some(1),
            state: ProductState::Published,
        }),
    ));
    changes.push(Change::ProductApi("starter".into(), "echo".into(), true));
    for g in ["administrators", "developers", "guests"] {
        changes.push(Change::ProductGroup("starter".into(), g.into(), true));
    }
    changes.push(Change::User(
        "demo".into(),
        Some(User {
            email: "demo@example.com".into(),
            first_name: "Demo".into(),
            last_name: "Developer".into(),
            state: UserState::Active,
            note: None,
            registration_date: now.into(),
            password: None,
        }),
    ));
    changes.push(Change::GroupUser("developers".into(), "demo".into(), true));
    changes.push(Change::Subscription(
        "demo".into(),
        Some(Subscription {
            scope: "/products/starter".into(),
            display_name: "Demo subscription".into(),
            owner_id: Some("/users/demo".into()),
            state: SubscriptionState::Active,
            state_comment: None,
            allow_tracing: false,
            primary_key: crate::error::Secret::new(key),
            secondary_key: crate::error::Secret::new(secondary),
            created_date: now.into(),
            expiration_date: None,
        }),
    ));
    changes
}

/// Seeds (or re-points) the demo. Returns what to print.
pub async fn prepare(
    state: &MgmtState,
    echo: SocketAddr,
    data_dir: &Path,
) -> Result<Option<DemoInfo>, ApiError> {
    let key = crate::error::random_hex(16)?;
    let secondary = crate::error::random_hex(16)?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let password_file = data_dir.join(ADMIN_PASSWORD_FILE);
    // The administrator's password reaches its file before the store
    // holds its hash, so a seeded administrator always has a known one.
    let admin_hash = if state.store.catalog().is_pristine() {
        let password = format!("tp-{}", crate::error::random_hex(12)?);
        let pw = password.clone();
        let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&pw))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|e| {
                tracing::error!(error = %e, "demo administrator password");
                ApiError::internal()
            })?;
        crate::durable::write_private(&password_file, format!("{password}\n").as_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, path = %password_file.display(), "cannot write the demo administrator's password");
                ApiError::internal()
            })?;
        Some(hash)
    } else {
        None
    };
    let seeded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = seeded.clone();
    let (k, s2) = (key.clone(), secondary.clone());
    let catalog = commit(state, move |c: &Catalog| {
        if c.is_pristine() {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut changes = seed_changes(echo, &k, &s2, &now);
            if let Some(hash) = admin_hash {
                changes.extend(admin_changes(hash, &now));
            }
            return Ok(changes);
        }
        match c.apis.get("echo") {
            Some(api) if api.description.as_deref() == Some(DEMO_DESCRIPTION) => {
                let url = format!("http://{echo}");
                if api.service_url.as_deref() == Some(url.as_str()) {
                    Ok(vec![])
                } else {
                    let mut api = api.clone();
                    api.service_url = Some(url);
                    Ok(vec![Change::Api("echo".into(), Some(api))])
                }
            }
            _ => Ok(vec![]),
        }
    })
    .await?;
    let seeded = seeded.load(std::sync::atomic::Ordering::Relaxed);
    let admin_password_file = (catalog
        .users
        .get(ADMIN_ID)
        .is_some_and(|u| u.email == ADMIN_EMAIL)
        && password_file.is_file())
    .then_some(password_file);
    Ok(catalog.subscriptions.get("demo").map(|s| DemoInfo {
        key: s.primary_key.expose().to_string(),
        seeded,
        admin_password_file,
    }))
}
