//! Policy-engine benchmarks: compiling (parse + bind) a typical expression,
//! evaluating `context.Request.Headers.GetValueOrDefault("x", "")`, and
//! running a full inbound section of five policies, reading a stored
//! `send-request` answer and preparing a `send-request`. Figures only; run with
//! `cargo bench --bench policy`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::expr::{self, Limits};
use turnpike::policy::builtin::{compile_document, run_plain, test_state, Policy, Section};

const TYPICAL: &str = r#"@(context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Claims.GetValueOrDefault("tid", "none") + "-" + context.Variables.GetValueOrDefault<string>("region", "eu"))"#;

const INBOUND: &str = r#"<policies><inbound>
  <set-variable name="tenant" value="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tenant&quot;, &quot;public&quot;))" />
  <choose>
    <when condition="@((string)context.Variables[&quot;tenant&quot;] == &quot;gold&quot;)">
      <set-header name="X-Tier" exists-action="override"><value>gold</value></set-header>
    </when>
    <otherwise>
      <set-header name="X-Tier" exists-action="override"><value>standard</value></set-header>
    </otherwise>
  </choose>
  <set-query-parameter name="tenant" exists-action="override"><value>@((string)context.Variables[&quot;tenant&quot;])</value></set-query-parameter>
  <set-header name="X-Request-Id" exists-action="override"><value>@(context.RequestId.ToString())</value></set-header>
  <set-header name="Ocp-Apim-Subscription-Key" exists-action="delete" />
</inbound></policies>"#;

fn benches(c: &mut Criterion) {
    c.bench_function("expr: parse + bind a typical expression", |b| {
        b.iter(|| expr::compile(black_box(TYPICAL), 0).map(|_| ()))
    });

    let get = expr::compile(
        r#"@(context.Request.Headers.GetValueOrDefault("x", ""))"#,
        0,
    )
    .expect("compiles");
    let mut ctx = expr::Ctx::default();
    ctx.request.message.headers.append("Accept", "*/*".into());
    ctx.request.message.headers.append("X", "value".into());
    c.bench_function("expr: Headers.GetValueOrDefault(\"x\", \"\")", |b| {
        b.iter(|| get.eval(black_box(&ctx), Limits::default()))
    });

    let doc = compile_document(INBOUND, &|_| None, &|_| None).expect("compiles");
    let steps = doc.section(Section::Inbound).expect("inbound");
    let mut proto = test_state(Section::Inbound);
    proto
        .ctx
        .request
        .message
        .headers
        .append("X-Tenant", "gold".into());
    proto
        .ctx
        .request
        .message
        .headers
        .append("Ocp-Apim-Subscription-Key", "k".into());
    c.bench_function("pipeline: inbound section of five policies", |b| {
        b.iter(|| {
            let mut st = test_state(Section::Inbound);
            st.ctx.request.message.headers = proto.ctx.request.message.headers.clone();
            run_plain(black_box(steps), &mut st).is_ok()
                && st.ctx.request.message.headers.0.len() > 1
        })
    });

    // A send-request's answer read back from context.Variables.
    let token = expr::compile(
        r#"@((string)((IResponse)context.Variables["r"]).Body.As<JObject>()["token"])"#,
        0,
    )
    .expect("compiles");
    let mut ctx = expr::Ctx::default();
    let mut stored = expr::context::Response {
        status: 200,
        reason: "OK".into(),
        ..Default::default()
    };
    stored.message.body = Some(r#"{"token":"abc","expires_in":3600}"#.into());
    ctx.variables
        .insert("r".into(), expr::lib::stored::value(stored));
    c.bench_function(
        "expr: stored IResponse Body.As<JObject>()[\"token\"]",
        |b| b.iter(|| token.eval(black_box(&ctx), Limits::default())),
    );

    // Turning a send-request into the request to send (no network).
    let doc = compile_document(
        r#"<policies><inbound><send-request mode="new" response-variable-name="r" timeout="10">
  <set-url>@("https://auth.example/token?tenant=" + context.Request.Headers.GetValueOrDefault("X-Tenant", ""))</set-url>
  <set-method>POST</set-method>
  <set-header name="Content-Type" exists-action="override"><value>application/x-www-form-urlencoded</value></set-header>
  <set-body>@("grant_type=client_credentials&amp;scope=" + context.Request.Headers.GetValueOrDefault("X-Tenant", ""))</set-body>
</send-request></inbound></policies>"#,
        &|_| None,
        &|_| None,
    )
    .expect("compiles");
    let steps = doc.section(Section::Inbound).expect("inbound");
    if let Policy::SendRequest(send) = &steps[0].policy {
        c.bench_function("send-request: prepare the outgoing request", |b| {
            b.iter(|| send.prepare(black_box(&proto)).is_ok())
        });
    }
}

criterion_group!(policy, benches);
criterion_main!(policy);
