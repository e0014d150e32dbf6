//! `seqrec serve`'s snapshot tokens (`resume=TOKEN`: client input) on arbitrary text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = seqrec::serve::decode_token("kws", text);
    }
});
