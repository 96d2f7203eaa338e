//! The configuration file, from text: TOML, every section's types and the
//! cross-key validation (`Settings::parse`, what `Settings::load` does
//! after reading the file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Settings::parse("config.toml", text) {
        let _ = e.to_string();
    }
});
