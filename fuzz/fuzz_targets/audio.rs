//! Audio decoding (WAV, FLAC, MP3, OGG/Vorbis, probed from the bytes) and
//! resampling to 16 kHz, on arbitrary files.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("seqrec-fuzz-{}.bin", std::process::id()));
    if std::fs::write(&path, data).is_ok()
        && let Ok(mut f) = seqrec::source::AudioFile::open(&path, 16000)
    {
        let mut buf = Vec::new();
        // bounded: a few seconds of output at most
        for _ in 0..64 {
            buf.clear();
            match f.read_chunk(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
