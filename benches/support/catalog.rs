//! The large configuration of the scale benchmarks (shared by
//! `examples/bench_seed.rs`, which seeds a store for `benches/vs-nginx.sh`,
//! and `benches/gateway.rs`): the bench API (`api`, path `/api`, one
//! `GET /*` operation, the key + `rate-limit-by-key` + `set-header`
//! policy) in product `bench` with one subscription whose primary key is
//! `key`, plus other APIs (two operations each, spread over 100 products)
//! and subscriptions (random keys; 90% product-scoped) up to `apis` and
//! `subs`.

use turnpike::error::Secret;
use turnpike::model::{
    Api, Change, Operation, PolicyDoc, PolicyScope, Product, ProductState, Subscription,
    SubscriptionState,
};

pub const POLICY: &str = r#"<policies><inbound><base />
<rate-limit-by-key calls="1000000000" renewal-period="60"
  counter-key="@(context.Subscription.Id)" />
<set-header name="x-bench" exists-action="override"><value>turnpike</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound>
<on-error><base /></on-error></policies>"#;
const PRODUCTS: usize = 100;

/// The changes that build the configuration, in an order that compiles
/// at every prefix (APIs before the links and subscriptions naming them).
pub fn changes(apis: usize, subs: usize, service: &str, key: &str) -> Vec<Change> {
    let service = service.to_string();
    let mut changes = Vec::new();
    for p in 0..PRODUCTS {
        changes.push(Change::Product(format!("product-{p:03}"), Some(product(p))));
    }
    changes.push(Change::Product("bench".into(), Some(product(PRODUCTS))));
    changes.push(Change::Api(
        "api".into(),
        Some(api("bench", "api", &service)),
    ));
    changes.push(Change::Operation(
        "api".into(),
        "get".into(),
        Some(op("GET", "/*")),
    ));
    changes.push(Change::Policy(
        PolicyScope::Api("api".into()),
        Some(PolicyDoc { xml: POLICY.into() }),
    ));
    changes.push(Change::ProductApi("bench".into(), "api".into(), true));
    changes.push(Change::Subscription(
        "bench".into(),
        Some(sub(
            "/products/bench".into(),
            Secret::new(key.to_string()),
            random_key(),
        )),
    ));
    for a in 1..apis {
        let id = format!("api-{a:05}");
        let path = format!("services/svc-{a:05}");
        changes.push(Change::Api(id.clone(), Some(api(&id, &path, &service))));
        changes.push(Change::Operation(
            id.clone(),
            "list".into(),
            Some(op("GET", "/items")),
        ));
        changes.push(Change::Operation(
            id.clone(),
            "get".into(),
            Some(op("GET", "/items/{id}")),
        ));
        changes.push(Change::ProductApi(
            format!("product-{:03}", a % PRODUCTS),
            id,
            true,
        ));
    }
    for s in 1..subs {
        let scope = if s % 10 == 0 && apis > 1 {
            format!("/apis/api-{:05}", 1 + s % (apis - 1))
        } else {
            format!("/products/product-{:03}", s % PRODUCTS)
        };
        changes.push(Change::Subscription(
            format!("sub-{s:06}"),
            Some(sub(scope, random_key(), random_key())),
        ));
    }
    changes
}

fn random_key() -> Secret {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random bytes");
    Secret::new(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn product(p: usize) -> Product {
    Product {
        display_name: format!("Product {p}"),
        description: None,
        terms: None,
        subscription_required: true,
        approval_required: false,
        subscriptions_limit: None,
        state: ProductState::Published,
    }
}

fn api(name: &str, path: &str, service: &str) -> Api {
    Api {
        display_name: name.into(),
        path: path.into(),
        service_url: Some(service.into()),
        ..Api::default()
    }
}

fn op(method: &str, template: &str) -> Operation {
    Operation {
        display_name: format!("{method} {template}"),
        method: method.into(),
        url_template: template.into(),
        description: None,
        template_parameters: Vec::new(),
        request: None,
        responses: Vec::new(),
        tags: Vec::new(),
    }
}

fn sub(scope: String, primary: Secret, secondary: Secret) -> Subscription {
    Subscription {
        scope,
        display_name: "bench".into(),
        owner_id: None,
        state: SubscriptionState::Active,
        state_comment: None,
        allow_tracing: false,
        primary_key: primary,
        secondary_key: secondary,
        created_date: "2026-01-01T00:00:00.000Z".into(),
        expiration_date: None,
    }
}
