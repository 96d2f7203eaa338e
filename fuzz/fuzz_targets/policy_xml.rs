//! A policy document as `PUT /mgmt/policy` receives it: the shape check,
//! the reference check, then the full compile (every policy's attributes,
//! every expression parsed and bound). Named values and fragments resolve
//! to fixed text, so documents that use them reach the compiler.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::policy;

const FRAGMENT: &str = "<fragment><set-header name=\"x-f\" exists-action=\"override\"><value>@(context.Request.Method)</value></set-header></fragment>";

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let _ = policy::check_fragment(xml);
    if policy::check_document(xml).is_err() {
        return;
    }
    let _ = policy::check_references(xml, |_| true, |_| true);
    let named = |name: &str| Some(format!("value-of-{name}"));
    let fragments = |_: &str| Some(FRAGMENT.to_string());
    let loggers = |_: &str| true;
    let dapr = turnpike::expr::context::Url::parse("http://127.0.0.1:3500");
    let _ =
        policy::builtin::compile_document_opts(xml, &named, &fragments, &loggers, dapr.as_ref());
});
