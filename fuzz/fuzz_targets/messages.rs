//! What clients send over the wire: the server's WebSocket messages (binary
//! PCM of either format, text control messages) and the cluster's messages
//! (live chunks are the same PCM; batch jobs are JSON). The first byte picks
//! which reader gets the rest.
#![no_main]
use seqrec::source::pcm::{PcmFormat, decode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = decode(PcmFormat::S16le, rest);
        }
        1 => {
            if let Ok(v) = decode(PcmFormat::F32le, rest) {
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
        2 => {
            if let Ok(t) = std::str::from_utf8(rest) {
                let _ = seqrec::serve::parse_control(t);
            }
        }
        _ => {
            let _ = seqrec::cluster::parse_job(rest);
        }
    }
});
