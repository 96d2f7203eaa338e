//! Any program that compiles, run against a fixed sample context with the
//! gateway's default limits: it must finish (a value or an exception),
//! never panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use turnpike::expr::{self, Ctx, Limits};

fn sample() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let json = serde_json::json!({
            "request": {
                "method": "POST",
                "url": "https://api.contoso.com/echo/items/42?x=1&y=a%20b",
                "headers": {"Authorization": "Bearer abc", "Accept": ["a/b", "c/d"], "Content-Type": "application/json"},
                "body": "{\"name\":\"widget\",\"tags\":[\"a\",\"b\"],\"price\":2.5,\"count\":3}",
                "ipAddress": "203.0.113.7",
                "matchedParameters": {"id": "42"}
            },
            "response": {"statusCode": 200, "headers": {"Content-Type": "text/xml"}, "body": "<a><b>1</b></a>"},
            "deployment": {"region": "West US", "serviceName": "contoso", "gatewayId": "gw1"},
            "variables": {"name": "value", "n": 5, "obj": {"k": [1, 2]}},
            "subscription": {"id": "s1", "key": "k", "name": "Starter"},
            "user": {"id": "u1", "email": "a@b.c"},
            "api": {"id": "echo", "name": "Echo", "path": "echo", "serviceUrl": "http://backend:8080/v1"},
            "operation": {"id": "get", "method": "GET", "urlTemplate": "/items/{id}"},
            "product": {"id": "starter", "name": "Starter"}
        });
        Ctx::from_sample(&json).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(compiled) = expr::compile(src, 0) else {
        return;
    };
    let _ = compiled.eval(sample(), Limits::default());
});
