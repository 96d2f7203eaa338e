//! The management listener's route table: every method and path it
//! serves and what authenticates a caller of each.
//!
//! Owns: [`ROUTES`]. The router in `mod.rs` (and `/metrics` in
//! `metrics.rs`) is the code; this table is its inventory. The unit tests
//! below read the router's source and fail when a route or a method is in
//! one and not the other, so a new route cannot be added without saying
//! who may call it; `tests/mgmt_authn.rs` then drives every entry through
//! real sockets (a missing, wrong or almost-right credential is a 401).

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <admin_key>` (`auth::require_admin`).
    Admin,
    /// `Authorization: GatewayKey <token>` minted by `POST
    /// /mgmt/gateways/{id}/token` (`cluster.rs`).
    GatewayToken,
    /// No credential: the Prometheus scrape (`metrics.rs`), which holds
    /// ids and counts, never a key or secret.
    Public,
}

/// One route: method, path (axum syntax, `{name}` for a segment), auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
}

const fn admin(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        auth: Auth::Admin,
    }
}

/// Every route of the management listener.
pub const ROUTES: &[Route] = &[
    admin("GET", "/mgmt/revision"),
    admin("GET", "/mgmt/reports/{kind}"),
    admin("GET", "/mgmt/apis"),
    admin("GET", "/mgmt/apis/{id}"),
    admin("PUT", "/mgmt/apis/{id}"),
    admin("DELETE", "/mgmt/apis/{id}"),
    admin("GET", "/mgmt/apis/{id}/operations"),
    admin("GET", "/mgmt/apis/{id}/operations/{op}"),
    admin("PUT", "/mgmt/apis/{id}/operations/{op}"),
    admin("DELETE", "/mgmt/apis/{id}/operations/{op}"),
    admin("GET", "/mgmt/apis/{id}/policy"),
    admin("PUT", "/mgmt/apis/{id}/policy"),
    admin("DELETE", "/mgmt/apis/{id}/policy"),
    admin("GET", "/mgmt/apis/{id}/operations/{op}/policy"),
    admin("PUT", "/mgmt/apis/{id}/operations/{op}/policy"),
    admin("DELETE", "/mgmt/apis/{id}/operations/{op}/policy"),
    admin("GET", "/mgmt/apis/{id}/products"),
    admin("POST", "/mgmt/apis/{id}/debug-token"),
    admin("GET", "/mgmt/traces/{id}"),
    admin("GET", "/mgmt/products"),
    admin("GET", "/mgmt/products/{id}"),
    admin("PUT", "/mgmt/products/{id}"),
    admin("DELETE", "/mgmt/products/{id}"),
    admin("GET", "/mgmt/products/{id}/apis"),
    admin("GET", "/mgmt/products/{id}/apis/{api}"),
    admin("PUT", "/mgmt/products/{id}/apis/{api}"),
    admin("DELETE", "/mgmt/products/{id}/apis/{api}"),
    admin("GET", "/mgmt/products/{id}/groups"),
    admin("GET", "/mgmt/products/{id}/groups/{group}"),
    admin("PUT", "/mgmt/products/{id}/groups/{group}"),
    admin("DELETE", "/mgmt/products/{id}/groups/{group}"),
    admin("GET", "/mgmt/products/{id}/policy"),
    admin("PUT", "/mgmt/products/{id}/policy"),
    admin("DELETE", "/mgmt/products/{id}/policy"),
    admin("GET", "/mgmt/products/{id}/subscriptions"),
    admin("GET", "/mgmt/policy"),
    admin("PUT", "/mgmt/policy"),
    admin("DELETE", "/mgmt/policy"),
    admin("GET", "/mgmt/policy-fragments"),
    admin("GET", "/mgmt/policy-fragments/{id}"),
    admin("PUT", "/mgmt/policy-fragments/{id}"),
    admin("DELETE", "/mgmt/policy-fragments/{id}"),
    admin("GET", "/mgmt/subscriptions"),
    admin("GET", "/mgmt/subscriptions/{id}"),
    admin("PUT", "/mgmt/subscriptions/{id}"),
    admin("DELETE", "/mgmt/subscriptions/{id}"),
    admin("POST", "/mgmt/subscriptions/{id}/listSecrets"),
    admin("POST", "/mgmt/subscriptions/{id}/regeneratePrimaryKey"),
    admin("POST", "/mgmt/subscriptions/{id}/regenerateSecondaryKey"),
    admin("GET", "/mgmt/users"),
    admin("GET", "/mgmt/users/{id}"),
    admin("PUT", "/mgmt/users/{id}"),
    admin("DELETE", "/mgmt/users/{id}"),
    admin("GET", "/mgmt/users/{id}/subscriptions"),
    admin("GET", "/mgmt/users/{id}/groups"),
    admin("GET", "/mgmt/groups"),
    admin("GET", "/mgmt/groups/{id}"),
    admin("PUT", "/mgmt/groups/{id}"),
    admin("DELETE", "/mgmt/groups/{id}"),
    admin("GET", "/mgmt/groups/{id}/users"),
    admin("GET", "/mgmt/groups/{id}/users/{user}"),
    admin("PUT", "/mgmt/groups/{id}/users/{user}"),
    admin("DELETE", "/mgmt/groups/{id}/users/{user}"),
    admin("GET", "/mgmt/named-values"),
    admin("GET", "/mgmt/named-values/{id}"),
    admin("PUT", "/mgmt/named-values/{id}"),
    admin("DELETE", "/mgmt/named-values/{id}"),
    admin("POST", "/mgmt/named-values/{id}/listValue"),
    admin("GET", "/mgmt/backends"),
    admin("GET", "/mgmt/backends/{id}"),
    admin("PUT", "/mgmt/backends/{id}"),
    admin("DELETE", "/mgmt/backends/{id}"),
    admin("GET", "/mgmt/loggers"),
    admin("GET", "/mgmt/loggers/{id}"),
    admin("PUT", "/mgmt/loggers/{id}"),
    admin("DELETE", "/mgmt/loggers/{id}"),
    admin("GET", "/mgmt/certificates"),
    admin("GET", "/mgmt/certificates/{id}"),
    admin("PUT", "/mgmt/certificates/{id}"),
    admin("DELETE", "/mgmt/certificates/{id}"),
    admin("GET", "/mgmt/hostnames"),
    admin("GET", "/mgmt/hostnames/{host}"),
    admin("PUT", "/mgmt/hostnames/{host}"),
    admin("DELETE", "/mgmt/hostnames/{host}"),
    admin("GET", "/mgmt/locations"),
    admin("GET", "/mgmt/locations/{id}"),
    admin("PUT", "/mgmt/locations/{id}"),
    admin("DELETE", "/mgmt/locations/{id}"),
    admin("GET", "/mgmt/gateways"),
    admin("GET", "/mgmt/gateways/{id}"),
    admin("PUT", "/mgmt/gateways/{id}"),
    admin("DELETE", "/mgmt/gateways/{id}"),
    admin("POST", "/mgmt/gateways/{id}/token"),
    admin("POST", "/mgmt/gateways/{id}/regenerateKey"),
    Route {
        method: "GET",
        path: "/cluster/v1/config",
        auth: Auth::GatewayToken,
    },
    Route {
        method: "POST",
        path: "/cluster/v1/heartbeat",
        auth: Auth::GatewayToken,
    },
    Route {
        method: "GET",
        path: "/metrics",
        auth: Auth::Public,
    },
];

impl Auth {
    /// The path prefix of the routes guarded this way (the nest in
    /// `mod.rs`).
    pub fn prefix(self) -> &'static str {
        match self {
            Auth::Admin => "/mgmt",
            Auth::GatewayToken => "/cluster/v1",
            Auth::Public => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(path, methods)` of every `.route(...)` call in a router source:
    /// the string literal, then the method-router functions called in the
    /// call's parentheses.
    fn scan(source: &str) -> Vec<(String, BTreeSet<String>)> {
        let needle = ".route(";
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(needle) {
            rest = &rest[at + needle.len()..];
            // The call's text up to its closing parenthesis.
            let mut depth = 1;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &rest[..end];
            let lit = call.trim_start();
            assert!(lit.starts_with('"'), "a route path is a literal: {call}");
            let path = lit[1..].split('"').next().unwrap_or_default().to_string();
            let mut methods = BTreeSet::new();
            for m in [
                "get", "put", "post", "delete", "patch", "head", "options", "any",
            ] {
                let called = call.match_indices(&format!("{m}(")).any(|(i, _)| {
                    // A whole word: `get(`, `.get(` but not `get_one(`'s tail.
                    let before = if i == 0 { b' ' } else { call.as_bytes()[i - 1] };
                    !(before.is_ascii_alphanumeric() || before == b'_' || before == b':')
                });
                if called {
                    methods.insert(m.to_ascii_uppercase());
                }
            }
            assert!(!methods.is_empty(), "no method found for {path}: {call}");
            out.push((path, methods));
            rest = &rest[end..];
        }
        out
    }

    /// The router's routes, from its source, with their nesting prefix.
    fn router_routes() -> BTreeSet<(String, String)> {
        let mut set = BTreeSet::new();
        let module = include_str!("mod.rs");
        // `mod.rs` builds the admin router, then the cluster one.
        let (admin_src, cluster_src) = module
            .split_once("let cluster = Router::new()")
            .expect("mod.rs builds the cluster router after the admin one");
        for (src, p) in [
            (admin_src, Auth::Admin.prefix()),
            (cluster_src, Auth::GatewayToken.prefix()),
            (include_str!("metrics.rs"), Auth::Public.prefix()),
        ] {
            for (path, methods) in scan(src) {
                for m in methods {
                    set.insert((m, format!("{p}{path}")));
                }
            }
        }
        set
    }

    #[test]
    fn the_table_lists_exactly_the_routes_of_the_router() {
        let router = router_routes();
        assert!(router.len() > 90, "the scan finds the routes: {router:?}");
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(table.len(), ROUTES.len(), "no route is listed twice");
        let missing: Vec<_> = router.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "routes served but not in mgmt::routes::ROUTES (add them, with their Auth): {missing:?}"
        );
        let stale: Vec<_> = table.difference(&router).collect();
        assert!(stale.is_empty(), "listed but not served: {stale:?}");
    }

    #[test]
    fn each_table_entry_carries_the_auth_of_its_prefix() {
        for r in ROUTES {
            assert!(r.path.starts_with(r.auth.prefix()), "{r:?}");
            if r.auth == Auth::Public {
                assert_eq!(r.path, "/metrics", "the only public route: {r:?}");
            }
        }
    }

    #[test]
    fn the_scan_sees_routes_and_methods() {
        let src = r#"x.route("/a", get(f).put(put_one::<T>)).route(
            "/b/{id}",
            post(g),
        )"#;
        let got = scan(src);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "/a");
        assert_eq!(
            got[0].1.iter().map(String::as_str).collect::<Vec<_>>(),
            ["GET", "PUT"]
        );
        assert_eq!(got[1].0, "/b/{id}");
        assert_eq!(
            got[1].1.iter().map(String::as_str).collect::<Vec<_>>(),
            ["POST"]
        );
    }
}
