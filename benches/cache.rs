//! Cache benchmarks: a `cache-lookup` hit run through the policy engine
//! (key built from the URL, a header and the query, the entry found, the
//! stored response copied into `context.Response`), and a raw lookup in
//! the gateway's cache. Figures only; run with `cargo bench --bench cache`.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::Duration;
use turnpike::expr::context::{ApiInfo, Url};
use turnpike::policy::builtin::{compile_document, run_plain, test_state, Outcome, Section};
use turnpike::policy::cache::{Cache, Cached, CachedResponse};

const DOC: &str = r#"<policies><inbound>
  <cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="private">
    <vary-by-header>Accept</vary-by-header>
    <vary-by-query-parameter>page</vary-by-query-parameter>
  </cache-lookup>
</inbound><outbound><cache-store duration="3600" /></outbound></policies>"#;

fn benches(c: &mut Criterion) {
    let doc = compile_document(DOC, &|_| None, &|_| None).expect("compiles");
    let inbound = doc.section(Section::Inbound).expect("inbound");
    let outbound = doc.section(Section::Outbound).expect("outbound");
    let cache = Arc::new(Cache::new(64 << 20));
    let mut proto = test_state(Section::Inbound);
    proto.cache = cache.clone();
    proto.ctx.request.method = "GET".into();
    proto.ctx.request.original_url =
        Url::parse("http://gw.example/shop/items?page=2&sort=asc").expect("url");
    proto.ctx.api = Some(ApiInfo {
        id: "shop".into(),
        query_name: "subscription-key".into(),
        ..Default::default()
    });
    proto
        .ctx
        .request
        .message
        .headers
        .append("Accept", "application/json".into());
    // Fill the entry once: a miss, then the store.
    let fresh = |proto: &turnpike::policy::builtin::State| {
        let mut st = test_state(Section::Inbound);
        st.cache = proto.cache.clone();
        st.ctx.request.method = proto.ctx.request.method.clone();
        st.ctx.request.original_url = proto.ctx.request.original_url.clone();
        st.ctx.api = proto.ctx.api.clone();
        st.ctx.request.message.headers = proto.ctx.request.message.headers.clone();
        st
    };
    let mut st = fresh(&proto);
    assert_eq!(run_plain(inbound, &mut st).ok(), Some(Outcome::Continue));
    st.section = Section::Outbound;
    st.response_mut().message.body = Some(Bytes::from(vec![b'x'; 2048]));
    run_plain(outbound, &mut st).expect("stores");

    c.bench_function("cache: cache-lookup hit (2 KiB response)", |b| {
        b.iter(|| {
            let mut st = fresh(&proto);
            let o = run_plain(black_box(inbound), &mut st);
            assert_eq!(o.ok(), Some(Outcome::Respond));
            st.ctx.response.is_some()
        })
    });

    let raw = Cache::new(64 << 20);
    raw.put(
        "k",
        Cached::Response(CachedResponse {
            status: 200,
            reason: "OK".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(vec![b'x'; 2048]),
        }),
        Duration::from_secs(3600),
    );
    c.bench_function("cache: Cache::get of a stored response", |b| {
        b.iter(|| raw.get(black_box("k")).is_some())
    });
}

criterion_group!(cache, benches);
criterion_main!(cache);
