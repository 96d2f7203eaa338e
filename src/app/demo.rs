//! `serve --demo`: seeds an empty store with something to call.
//!
//! Seeds (only when the store holds nothing but the built-in groups): the
//! `echo` API on the built-in echo backend with GET/POST/PUT/DELETE `/*`
//! operations and a policy that names the answering region and gateway
//! (`x-turnpike-region`, `x-turnpike-gateway`: handy in a cluster), a
//! published `starter` product containing it, a `demo` user
//! and an active subscription. On a store that is not empty it seeds
//! nothing; it only re-points the seeded `echo` API at this run's echo
//! backend (whose port changes on every start) if that API is still the
//! untouched demo one.

use crate::error::ApiError;
use crate::mgmt::{commit, MgmtState};
use crate::model::{
    Api, Catalog, Change, Operation, PolicyDoc, PolicyScope, Product, ProductState, Subscription,
    SubscriptionState, User, UserState,
};
use std::net::SocketAddr;

/// Description that marks the seeded API.
const DEMO_DESCRIPTION: &str = "Echoes every request back as JSON (turnpike demo).";

/// What the demo prints for the user.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// The subscription key to call the echo API with.
    pub key: String,
    /// Whether this run seeded the store.
    pub seeded: bool,
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
pub async fn prepare(state: &MgmtState, echo: SocketAddr) -> Result<Option<DemoInfo>, ApiError> {
    let key = crate::error::random_hex(16)?;
    let secondary = crate::error::random_hex(16)?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let seeded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = seeded.clone();
    let (k, s2) = (key.clone(), secondary.clone());
    let catalog = commit(state, move |c: &Catalog| {
        if c.is_pristine() {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            return Ok(seed_changes(echo, &k, &s2, &now));
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
    Ok(catalog.subscriptions.get("demo").map(|s| DemoInfo {
        key: s.primary_key.expose().to_string(),
        seeded,
    }))
}
