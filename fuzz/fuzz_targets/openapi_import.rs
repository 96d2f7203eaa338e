//! An API definition as `PUT /mgmt/apis/{id}` with `format=openapi`
//! (YAML or JSON) imports it, and the operations' URL templates as the
//! gateway's router compiles them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::openapi::{self, Format};
use turnpike::snapshot::routes::Template;

fuzz_target!(|data: &[u8]| {
    let format = if data.first() == Some(&b'{') {
        Format::OpenApiJson
    } else {
        Format::OpenApi
    };
    let Ok(imported) = openapi::import(format, data, Some("https://example.com/specs/api.yaml"))
    else {
        return;
    };
    for (_, op) in &imported.operations {
        let _ = Template::parse(&op.url_template);
    }
});
