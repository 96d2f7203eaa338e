//! URL templates and matching. The input is lines: templates (`METHOD
//! /template`, or just `/template` for any method) up to the first empty
//! line, then requests (`METHOD /path?query`). Every template that parses
//! goes into one operation table; every request is matched and, when
//! found, its parameters captured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::snapshot::routes::{OperationTable, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (defs, requests) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut ops = Vec::new();
    for line in defs.lines().take(256) {
        let (method, template) = match line.split_once(' ') {
            Some((m, t)) => (m, t),
            None => ("*", line),
        };
        if let Ok(t) = Template::parse(template) {
            let _ = t.shape();
            ops.push((method.to_string(), t));
        }
    }
    let table = OperationTable::build(ops);
    for line in requests.lines().take(256) {
        let (method, target) = line.split_once(' ').unwrap_or(("GET", line));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(i) = table.find(method, &segments, query) {
            for (_, value) in table.template(i).captures(&segments, query) {
                // A capture is a piece of the request, never invented text.
                assert!(target.contains(value), "{value:?} not in {target:?}");
            }
        }
    }
});
