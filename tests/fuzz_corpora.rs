//! Replays the fuzz corpora (fuzz/corpora/*.bin, fuzz/seeds/*/) on stable:
//! every input the coverage-guided fuzzers kept must still give a result or
//! an error — no panic, no hang — through the same calls as the targets in
//! fuzz/fuzz_targets/. See README "Fuzzing".

mod common;

use std::path::Path;

/// The inputs of one target: its packed corpus, then its seeds.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = common::root().join("fuzz");
    let mut out = Vec::new();
    let raw = std::fs::read(dir.join(format!("corpora/{target}.bin"))).unwrap();
    let mut i = 0;
    while i < raw.len() {
        let k = u32::from_le_bytes(raw[i..i + 4].try_into().unwrap()) as usize;
        out.push(raw[i + 4..i + 4 + k].to_vec());
        i += 4 + k;
    }
    let mut seeds: Vec<_> = std::fs::read_dir(dir.join("seeds").join(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    out.extend(seeds.iter().map(|p| std::fs::read(p).unwrap()));
    assert!(out.len() > 3, "{target}: {} inputs", out.len());
    out
}

#[test]
fn onnx_reader() {
    for data in inputs("onnx") {
        let _ = seqrec::onnx::Model::parse(&data, Path::new("fuzz.onnx"));
    }
}

#[test]
fn bundle_manifest() {
    let dir = tempfile::tempdir().unwrap();
    for data in inputs("manifest") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = seqrec::bundle::Bundle::parse(text, dir.path(), Path::new("bundle.toml"));
        }
    }
}

#[test]
fn npy_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    for data in inputs("npy") {
        std::fs::write(&path, &data).unwrap();
        let _ = seqrec::npy::read_f32(&path);
    }
}

#[test]
fn audio_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bin");
    for data in inputs("audio") {
        std::fs::write(&path, &data).unwrap();
        if let Ok(mut f) = seqrec::source::AudioFile::open(&path, 16000) {
            let mut buf = Vec::new();
            for _ in 0..64 {
                buf.clear();
                match f.read_chunk(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

#[test]
fn serve_snapshot_tokens() {
    for data in inputs("serve_token") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = seqrec::serve::decode_token("kws", text);
        }
    }
}

#[test]
fn wire_messages() {
    use seqrec::source::pcm::{PcmFormat, decode};
    for data in inputs("messages") {
        let Some((&which, rest)) = data.split_first() else {
            continue;
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
    }
}
