//! The .npy reader on arbitrary files.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("seqrec-fuzz-{}.npy", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = seqrec::npy::read_f32(&path);
    }
});
