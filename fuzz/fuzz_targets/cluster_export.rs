//! The configuration export as a secondary applies it: inflate (capped),
//! parse the catalog JSON, compile the snapshot. Any bytes from the
//! network must end in a catalog or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::model::export;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the form: gzip as served, or the JSON inside
    // (reaching the parser and the compiler without a valid gzip stream).
    let catalog = match data.split_first() {
        Some((b, rest)) if b & 1 == 0 => export::decode(rest, 16 << 20),
        Some((_, rest)) => export::parse(rest),
        None => return,
    };
    if let Ok(catalog) = catalog {
        let _ = turnpike::snapshot::compile(&catalog);
    }
});
