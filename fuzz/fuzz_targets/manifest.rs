//! The bundle manifest (bundle.toml) parser and validator on arbitrary text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let dir = std::env::temp_dir();
        let _ = seqrec::bundle::Bundle::parse(text, &dir, std::path::Path::new("bundle.toml"));
    }
});
