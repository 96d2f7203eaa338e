//! `validate-jwt` through the real gateway: token sources, HS/RS/PS
//! signatures, every failure reason, custom status and message, on-error
//! seeing `context.LastError.Reason`, clock skew and the output variable.

mod common;

use base64::Engine as _;
use common::{assert_gateway_error, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &[u8] = b"a test secret of thirty-two bytes";
const DEFAULT_MESSAGE: &str = "Unauthorized. Access token is missing or invalid.";

/// A fixed 2048-bit RSA test key (PKCS#1 DER, base64): tests only.
const RSA_DER_B64: &str = "MIIEpAIBAAKCAQEAvELHneBPa+RsnVXw/fVyV4vYcNqNlvdCLbUlsESydr31js3lfYBx6Haw3BcEIEqJysWPegqh2SKxM/joevUGvf6cviOzIRvKsoF48/XyLZt7YmeMoKnIB1L2PGTuIWIZqUTCPQlgjjhI7RgEnBqPeoZ3ILTCK5/YG/C266GZl1m0sq6yX/piT9JS+fjcYIN4ffYjQ3+/8XcPUArODgVZabyskEcBTLP0d49V/LGQYwv9ou9frtM3bkmYpeVDiKW/H/2DwdOoNaCjOP6l406di/EeqST2u4APlVwltQuyPe60wVo0kV07iAVT2G28Ld5j4TC8BzWmOZ4LyOTE8kt56wIDAQABAoIBADwBxzHd8ULRNQOzhJTWWwNnum5CY5ZGquv5zRER3Ja3tuE1ZNxriCNSTc5hcbm/OIuPDEwYvn0BL12DDcs/dc4yrZB3vZ2kh6f9V+nfL7n00M/NdMgzReR7v6wBedvfMpG/LnCZIBNFAo28NZ/yYWBrIuakZy3TjeVeBVg3EsdoTxgWu2KBVRwVsmiIeFhNmjfbKoILuMAHgHDdMgmLpWKMeCVrsWY6WjowWxdVuwZKx7XxU4cy2CI2BE6o6Gthvl1b7UgOvLg4vjmtwVk8ump9wGBWTgFhrlgeeLg7rPlNR64blCTONTUsOUDzXXz426JsCSa33yXLQCbDcHnl7QECgYEA3hDYrDR9KTW9+Gy2SfX3kcAlOlC3799QJB3rDVGBB4x/4LeJFxr1u4CvyLAYpAUnlW20Nqdu6p1cC3GOSvRRAiII/QHywLbtAq6GBJcdqV+U6HL9xzXvPsbeynlClkfBrMEuPEJGUYc7j4qmWCDCJyW00u8xfTnbyxc4rYZYuOsCgYEA2Qd+OUhMQ1kYzWcIPWThFETnZkPWkGpieNo/h/yh8N0ili77Y04PqdT/4InnrOd4AwvwA2Ge2aZCrJ++5fLFmOfxEyrEHS2kRbVFmzBJJjtrZCLLTMQTcdO017qrKWSxtCQvmCbdSoS7ZhXmorZ7W+MdTrV2Kd+N05/tCjNYAwECgYEAhAMfy7+oaEc6l+SIuY8vjcXcW76Ammj3C4F9qn05Z3Nu0fhJ1yJ/0ue9mGCXRWqLDZoZ+COxHGhPv73SCV0Ui2AQV9hAp7AXVfDKWxA64eWgcE9r7nFxuLAg4d0UaKJf0INHKSt9AhqSndKe8OUIhp0z0fHASeGLeEBlwUKMm+ECgYEAuj3j4+RXDbR3xEyWlZjsTiiTKv8sMeIZfvxLaLczgS9Dbv4CXMWwS12t91JgrdA0/OhRn5U2bDBxJxIvD8W2K/Fev8QDZ8azId7dTL+zBkwXbGcvb0EULqoulrJqD6uJk7052qf/XuNorcI9mYRfeAr+K30tWeGuI90p3YcSEAECgYAClly0tqcHKrtDVo86ILzU0X9DaUrmWIszgOUfx6Y13l2ktVnzHuT2jvcsbqWy+QfQGVDzTWLoP9ZXlR1GxeKJXP6/Q5AHcWSIcMyEQr78UOUqb2YcIMiP52P7pbdHWQTZIuJm1MD1C96zoofRN5w/CA7/KLOKRCL81GPMj5ufBw==";
/// Its public modulus and exponent, base64url (as `<key n e>` takes them).
const RSA_N: &str = "vELHneBPa-RsnVXw_fVyV4vYcNqNlvdCLbUlsESydr31js3lfYBx6Haw3BcEIEqJysWPegqh2SKxM_joevUGvf6cviOzIRvKsoF48_XyLZt7YmeMoKnIB1L2PGTuIWIZqUTCPQlgjjhI7RgEnBqPeoZ3ILTCK5_YG_C266GZl1m0sq6yX_piT9JS-fjcYIN4ffYjQ3-_8XcPUArODgVZabyskEcBTLP0d49V_LGQYwv9ou9frtM3bkmYpeVDiKW_H_2DwdOoNaCjOP6l406di_EeqST2u4APlVwltQuyPe60wVo0kV07iAVT2G28Ld5j4TC8BzWmOZ4LyOTE8kt56w";
const RSA_E: &str = "AQAB";

fn secret_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(SECRET)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims that pass the checks of [`strict_policy`].
fn claims() -> Value {
    json!({
        "sub": "alice",
        "aud": ["api://turnpike", "other"],
        "iss": "https://issuer.example",
        "exp": now() + 600,
        "nbf": now() - 10,
        "role": "reader",
        "scp": "read write",
    })
}

fn with(mut c: Value, k: &str, v: Value) -> Value {
    c[k] = v;
    c
}

fn without(mut c: Value, k: &str) -> Value {
    c.as_object_mut().unwrap().remove(k);
    c
}

fn hs(alg: Algorithm, c: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), c, &EncodingKey::from_secret(SECRET)).unwrap()
}

fn rs(alg: Algorithm, c: &Value) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(RSA_DER_B64)
        .unwrap();
    let mut h = Header::new(alg);
    h.kid = Some("rsa1".into());
    jsonwebtoken::encode(&h, c, &EncodingKey::from_rsa_der(&der)).unwrap()
}

/// An unsigned token (`alg: none`).
fn unsigned(c: &Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        e.encode(br#"{"alg":"none","typ":"JWT"}"#),
        e.encode(c.to_string())
    )
}

async fn policy(app: &TestApp, xml: &str) {
    let r = app.put_xml("/apis/echo/policy", xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
}

async fn get(app: &TestApp, key: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = app
        .client
        .get(format!("{}{}", app.gw, path))
        .header("Ocp-Apim-Subscription-Key", key);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn bearer(app: &TestApp, key: &str, token: &str) -> reqwest::Response {
    get(
        app,
        key,
        "/echo/x",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
}

fn strict_policy(extra_attrs: &str, on_error: &str) -> String {
    format!(
        r#"<policies><inbound><base />
  <validate-jwt header-name="Authorization" require-scheme="Bearer" {extra_attrs}>
    <issuer-signing-keys><key>{}</key></issuer-signing-keys>
    <audiences><audience>api://turnpike</audience></audiences>
    <issuers><issuer>https://issuer.example</issuer></issuers>
    <required-claims>
      <claim name="role" match="any"><value>admin</value><value>reader</value></claim>
      <claim name="scp" match="all" separator=" "><value>read</value><value>write</value></claim>
    </required-claims>
  </validate-jwt>
</inbound><on-error><base />{on_error}</on-error></policies>"#,
        secret_b64()
    )
}

#[tokio::test]
async fn hs256_from_header_query_and_expression_with_output_variable() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let out = r#"<set-header name="X-Sub" exists-action="override"><value>@(((Jwt)context.Variables["t"]).Claims.GetValueOrDefault("sub", "?"))</value></set-header>"#;
    let doc = |attrs: &str| {
        format!(
            r#"<policies><inbound><base /><validate-jwt {attrs} output-token-variable-name="t"><issuer-signing-keys><key>{}</key></issuer-signing-keys></validate-jwt>{out}</inbound></policies>"#,
            secret_b64()
        )
    };
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        policy(
            &app,
            &doc(r#"header-name="Authorization" require-scheme="Bearer""#),
        )
        .await;
        let r = bearer(&app, &key, &hs(alg, &claims())).await;
        assert_eq!(r.status(), 200, "{alg:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["headers"]["x-sub"], "alice");
    }

    // Without require-scheme a bare token in another header works too.
    policy(&app, &doc(r#"header-name="X-Token""#)).await;
    let t = hs(Algorithm::HS256, &claims());
    let r = get(&app, &key, "/echo/x", &[("X-Token", &t)]).await;
    assert_eq!(r.status(), 200);

    policy(&app, &doc(r#"query-parameter-name="access_token""#)).await;
    let r = get(&app, &key, &format!("/echo/x?access_token={t}"), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-sub"], "alice");
    let r = get(&app, &key, "/echo/x", &[]).await;
    assert_gateway_error(r, 401, DEFAULT_MESSAGE).await;

    policy(
        &app,
        &doc(r#"token-value="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tok&quot;, &quot;&quot;))""#),
    )
    .await;
    let r = get(&app, &key, "/echo/x", &[("X-Tok", &t)]).await;
    assert_eq!(r.status(), 200);
    let r = get(&app, &key, "/echo/x", &[("X-Tok", "")]).await;
    assert_gateway_error(r, 401, DEFAULT_MESSAGE).await;
}

#[tokio::test]
async fn rs256_and_ps256_with_modulus_and_exponent() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        &format!(
            r#"<policies><inbound><base /><validate-jwt header-name="Authorization"><issuer-signing-keys><key>{}</key><key id="rsa1" n="{RSA_N}" e="{RSA_E}" /></issuer-signing-keys></validate-jwt></inbound>
<on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#,
            secret_b64()
        ),
    )
    .await;
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let r = bearer(&app, &key, &rs(alg, &claims())).await;
        assert_eq!(r.status(), 200, "{alg:?}");
    }
    // A changed payload breaks the signature.
    let t = rs(Algorithm::RS256, &claims());
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(with(claims(), "sub", json!("mallory")).to_string());
    let r = bearer(&app, &key, &parts.join(".")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-reason"], "TokenSignatureInvalid");
    // An HMAC token signed with another secret.
    let other = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    let r = bearer(&app, &key, &other).await;
    assert_eq!(r.headers()["x-reason"], "TokenSignatureInvalid");
    // Keys never reach the caller.
    let body = r.text().await.unwrap();
    assert!(!body.contains(&secret_b64()) && !body.contains(RSA_N) && !body.contains(&other));
}

#[tokio::test]
async fn each_failure_has_its_reason_and_the_default_answer() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;

    policy(&app, &strict_policy("", "")).await;
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &claims())).await;
    assert_eq!(r.status(), 200);
    let r = get(&app, &key, "/echo/x", &[]).await;
    assert_gateway_error(r, 401, DEFAULT_MESSAGE).await;

    let reason = r#"<set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason + "/" + context.LastError.Source)</value></set-header>"#;
    policy(&app, &strict_policy("", reason)).await;
    let t = |c: Value| hs(Algorithm::HS256, &c);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("TokenNotPresent", vec![]),
        (
            "TokenSchemeNotAllowed",
            vec![("Authorization", format!("Basic {}", t(claims())))],
        ),
        (
            "TokenSchemeNotAllowed",
            vec![("Authorization", t(claims()))],
        ),
        (
            "JwtInvalid",
            vec![("Authorization", "Bearer not.a-jwt".into())],
        ),
        (
            "TokenSignatureInvalid",
            vec![("Authorization", format!("Bearer {}", unsigned(&claims())))],
        ),
        (
            "TokenExpired",
            vec![(
                "Authorization",
                format!("Bearer {}", t(with(claims(), "exp", json!(now() - 60)))),
            )],
        ),
        (
            "TokenExpired",
            vec![(
                "Authorization",
                format!("Bearer {}", t(without(claims(), "exp"))),
            )],
        ),
        (
            "TokenNotYetValid",
            vec![(
                "Authorization",
                format!("Bearer {}", t(with(claims(), "nbf", json!(now() + 600)))),
            )],
        ),
        (
            "TokenAudienceNotAllowed",
            vec![(
                "Authorization",
                format!("Bearer {}", t(with(claims(), "aud", json!("someone-else")))),
            )],
        ),
        (
            "TokenAudienceNotAllowed",
            vec![(
                "Authorization",
                format!("Bearer {}", t(without(claims(), "aud"))),
            )],
        ),
        (
            "TokenIssuerNotAllowed",
            vec![(
                "Authorization",
                format!(
                    "Bearer {}",
                    t(with(claims(), "iss", json!("https://evil.example")))
                ),
            )],
        ),
        (
            "TokenClaimNotFound",
            vec![(
                "Authorization",
                format!("Bearer {}", t(without(claims(), "role"))),
            )],
        ),
        (
            "TokenClaimValueNotAllowed",
            vec![(
                "Authorization",
                format!("Bearer {}", t(with(claims(), "role", json!("guest")))),
            )],
        ),
        (
            "TokenClaimValueNotAllowed",
            vec![(
                "Authorization",
                format!("Bearer {}", t(with(claims(), "scp", json!("read")))),
            )],
        ),
        (
            "TokenSignatureKeyNotFound",
            vec![(
                "Authorization",
                format!("Bearer {}", rs(Algorithm::RS256, &claims())),
            )],
        ),
    ];
    for (want, headers) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(&app, &key, "/echo/x", &h).await;
        assert_eq!(r.status(), 401, "{want}");
        assert_eq!(r.headers()["x-reason"], &format!("{want}/validate-jwt"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({"statusCode": 401, "message": DEFAULT_MESSAGE}),
            "{want}"
        );
    }
    // Any-of and all-of claims with a separator, as arrays too.
    let ok = with(
        with(claims(), "role", json!(["guest", "admin"])),
        "scp",
        json!("write read extra"),
    );
    let r = bearer(&app, &key, &t(ok)).await;
    assert_eq!(r.status(), 200);

    // A custom status and message.
    policy(
        &app,
        &strict_policy(
            r#"failed-validation-httpcode="403" failed-validation-error-message="No entry.""#,
            "",
        ),
    )
    .await;
    let r = bearer(&app, &key, &t(with(claims(), "iss", json!("x")))).await;
    assert_gateway_error(r, 403, "No entry.").await;

    // on-error can answer on its own.
    policy(
        &app,
        &strict_policy(
            "",
            r#"<return-response><set-status code="418" reason="Teapot" /><set-body>@(context.LastError.Reason)</set-body></return-response>"#,
        ),
    )
    .await;
    let r = bearer(&app, &key, &t(with(claims(), "exp", json!(now() - 5)))).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.text().await.unwrap(), "TokenExpired");
}

#[tokio::test]
async fn clock_skew_and_optional_expiry() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let just_expired = with(claims(), "exp", json!(now() - 30));
    policy(&app, &strict_policy(r#"clock-skew="120""#, "")).await;
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &just_expired)).await;
    assert_eq!(r.status(), 200);
    let soon = with(claims(), "nbf", json!(now() + 30));
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &soon)).await;
    assert_eq!(r.status(), 200);
    let long_expired = with(claims(), "exp", json!(now() - 600));
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &long_expired)).await;
    assert_eq!(r.status(), 401);

    policy(
        &app,
        &strict_policy(r#"require-expiration-time="false""#, ""),
    )
    .await;
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &without(claims(), "exp"))).await;
    assert_eq!(r.status(), 200);

    // Unsigned tokens pass only when signatures are not required.
    policy(
        &app,
        r#"<policies><inbound><base /><validate-jwt require-signed-tokens="false"><issuers><issuer>https://issuer.example</issuer></issuers></validate-jwt></inbound></policies>"#,
    )
    .await;
    let r = bearer(&app, &key, &unsigned(&claims())).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unsupported_parts_are_refused_when_saved() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><validate-jwt><issuer-signing-keys><key certificate-id="c1" /></issuer-signing-keys></validate-jwt></inbound></policies>"#,
        )
        .await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("certificates are not supported"), "{body}");
}

/// An identity provider: metadata, a JWKS with the RSA test key and `ec`,
/// and how many times each was fetched.
async fn provider(
    ec_x: String,
    ec_y: String,
) -> (String, std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let h = hits.clone();
    let addr = common::backend::spawn(move |req| {
        let h = h.clone();
        let (x, y) = (ec_x.clone(), ec_y.clone());
        async move {
            let host = req.headers()["host"].to_str().unwrap().to_string();
            let body = match req.uri().path() {
                "/.well-known/openid-configuration" => {
                    h[0].fetch_add(1, Ordering::SeqCst);
                    json!({"issuer": "https://issuer.example", "jwks_uri": format!("http://{host}/jwks")})
                }
                _ => {
                    h[1].fetch_add(1, Ordering::SeqCst);
                    json!({"keys": [
                        {"kty": "RSA", "kid": "rsa1", "use": "sig", "n": RSA_N, "e": RSA_E},
                        {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": x, "y": y},
                    ]})
                }
            };
            let mut r = hyper::Response::new(common::backend::full(body.to_string()));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
    })
    .await;
    (
        format!("http://{addr}/.well-known/openid-configuration"),
        hits,
    )
}

#[tokio::test]
async fn openid_config_discovers_rsa_and_ec_keys_once() {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use std::sync::atomic::Ordering;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (x, y) = (b64.encode(&point[1..33]), b64.encode(&point[33..65]));
    let (url, hits) = provider(x, y).await;

    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        &format!(
            r#"<policies><inbound><base /><validate-jwt header-name="Authorization" require-scheme="Bearer"><openid-config url="{url}" /><audiences><audience>api://turnpike</audience></audiences></validate-jwt></inbound>
<on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#
        ),
    )
    .await;
    let r = bearer(&app, &key, &rs(Algorithm::RS256, &claims())).await;
    assert_eq!(r.status(), 200);
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec1".into());
    let es =
        jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    let r = bearer(&app, &key, &es).await;
    assert_eq!(r.status(), 200);
    // The metadata's issuer is the allowed one.
    let r = bearer(
        &app,
        &key,
        &rs(
            Algorithm::PS256,
            &with(claims(), "iss", json!("https://evil.example")),
        ),
    )
    .await;
    assert_eq!(r.headers()["x-reason"], "TokenIssuerNotAllowed");
    // No key of the token's kind: a refetch is due only after 5 minutes.
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &claims())).await;
    assert_eq!(r.headers()["x-reason"], "TokenSignatureKeyNotFound");
    let r = bearer(&app, &key, &rs(Algorithm::RS512, &claims())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hits[0].load(Ordering::SeqCst), 1, "metadata fetched once");
    assert_eq!(hits[1].load(Ordering::SeqCst), 1, "JWKS fetched once");
}

#[tokio::test]
async fn an_unreachable_provider_fails_validation() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    policy(
        &app,
        &format!(
            r#"<policies><inbound><base /><validate-jwt><openid-config url="http://127.0.0.1:{port}/.well-known/openid-configuration" /></validate-jwt></inbound></policies>"#
        ),
    )
    .await;
    let r = bearer(&app, &key, &rs(Algorithm::RS256, &claims())).await;
    assert_gateway_error(r, 401, DEFAULT_MESSAGE).await;
}

/// `validate-azure-ad-token`: keys and issuer from the tenant's v2.0
/// discovery document under `authentication-endpoint`; v1.0 and v2.0
/// issuers, backend application ids as audiences, client application ids
/// against `azp` / `appid`.
#[tokio::test]
async fn validate_azure_ad_token_uses_the_tenants_discovery_document() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const TID: &str = "8f2c7d51-3b0e-4c35-9a4e-0d1f5b2a7c19";
    let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let fetched = std::sync::Arc::new(AtomicUsize::new(0));
    let (p, f) = (paths.clone(), fetched.clone());
    let addr = common::backend::spawn(move |req| {
        let (p, f) = (p.clone(), f.clone());
        async move {
            let host = req.headers()["host"].to_str().unwrap().to_string();
            let path = req.uri().path().to_string();
            p.lock().unwrap().push(path.clone());
            f.fetch_add(1, Ordering::SeqCst);
            let body = if path.ends_with("/.well-known/openid-configuration") {
                json!({
                    "issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
                    "jwks_uri": format!("http://{host}/{TID}/discovery/v2.0/keys"),
                })
            } else {
                json!({"keys": [{"kty": "RSA", "kid": "rsa1", "use": "sig", "n": RSA_N, "e": RSA_E}]})
            };
            hyper::Response::new(common::backend::full(body.to_string()))
        }
    })
    .await;

    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        &format!(
            r#"<policies><inbound><base />
  <validate-azure-ad-token tenant-id="{TID}" authentication-endpoint="http://{addr}/" output-token-variable-name="jwt">
    <client-application-ids><application-id>client-app-1</application-id></client-application-ids>
    <backend-application-ids><application-id>backend-app</application-id></backend-application-ids>
  </validate-azure-ad-token>
  <return-response><set-status code="200" reason="OK" /><set-body>@(((Jwt)context.Variables["jwt"]).Subject)</set-body></return-response>
</inbound>
<on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Source + ":" + context.LastError.Reason)</value></set-header></on-error></policies>"#
        ),
    )
    .await;
    let v2 = json!({
        "sub": "alice", "aud": "backend-app", "azp": "client-app-1",
        "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
        "exp": now() + 600, "nbf": now() - 10,
    });
    let r = bearer(&app, &key, &rs(Algorithm::RS256, &v2)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "alice");
    assert_eq!(
        paths.lock().unwrap()[0],
        format!("/{TID}/v2.0/.well-known/openid-configuration")
    );

    // A v1.0 token of the same tenant: sts.windows.net issuer, `appid`,
    // the `api://` form of the backend application id.
    let v1 = json!({
        "sub": "bob", "aud": "api://backend-app", "appid": "client-app-1",
        "iss": format!("https://sts.windows.net/{TID}/"),
        "exp": now() + 600,
    });
    let r = bearer(&app, &key, &rs(Algorithm::RS256, &v1)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "bob");

    let reason = |r: reqwest::Response| r.headers()["x-reason"].to_str().unwrap().to_string();
    let r = bearer(
        &app,
        &key,
        &rs(
            Algorithm::RS256,
            &with(v2.clone(), "azp", json!("someone-else")),
        ),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        reason(r),
        "validate-azure-ad-token:TokenClaimValueNotAllowed"
    );
    let r = bearer(
        &app,
        &key,
        &rs(
            Algorithm::RS256,
            &with(v2.clone(), "aud", json!("other-api")),
        ),
    )
    .await;
    assert_eq!(reason(r), "validate-azure-ad-token:TokenAudienceNotAllowed");
    let r = bearer(
        &app,
        &key,
        &rs(
            Algorithm::RS256,
            &with(
                v2.clone(),
                "iss",
                json!("https://login.microsoftonline.com/another-tenant/v2.0"),
            ),
        ),
    )
    .await;
    assert_eq!(reason(r), "validate-azure-ad-token:TokenIssuerNotAllowed");
    let r = bearer(&app, &key, &hs(Algorithm::HS256, &v2)).await;
    assert_eq!(
        reason(r),
        "validate-azure-ad-token:TokenSignatureKeyNotFound"
    );
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        2,
        "metadata and keys fetched once"
    );

    // A tenant-id that cannot be part of a URL is refused when saved.
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><validate-azure-ad-token tenant-id="a b/c" /></inbound></policies>"#,
        )
        .await;
    assert_eq!(r.status(), 400);
}
