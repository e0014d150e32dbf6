//! Front end throughput: frames per second and real-time factor on one core.
//!
//! `cargo bench --bench frontend`. The real-time factor is seconds of audio
//! processed per second of compute (higher is better).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use seqrec::features::{FeatureConfig, FeatureKind, FrontEnd, MelScale};

fn signal(n: usize) -> Vec<f32> {
    let mut s = 12345u32;
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            0.3 * (i as f32 * 0.05).sin() + 0.05 * ((s >> 8) as f32 / (1 << 24) as f32 - 0.5)
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let speech = FeatureConfig::speech_16k();
    let music = FeatureConfig {
        sample_rate: 22050,
        n_fft: 1024,
        win_length: None,
        hop_length: Some(256),
        n_mels: 96,
        fmin: 0.0,
        fmax: None,
        mel_scale: MelScale::Htk,
        center: true,
        kind: FeatureKind::Logmel,
        n_mfcc: 20,
        pad_left: 0,
        ..speech.clone()
    };
    let mut summary = Vec::new();
    for (name, cfg) in [
        ("speech_logmel", speech.clone()),
        (
            "speech_mfcc",
            FeatureConfig {
                kind: FeatureKind::Mfcc,
                ..speech.clone()
            },
        ),
        ("music_logmel", music),
    ] {
        let secs = 10.0;
        let x = signal((secs * cfg.sample_rate as f64) as usize);
        let frames = cfg.n_frames(x.len());
        let mut fe = FrontEnd::new(&cfg).unwrap();
        let mut out = Vec::with_capacity(frames * cfg.n_bins());
        let mut g = c.benchmark_group("frontend");
        g.throughput(Throughput::Elements(frames as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                // 10 ms chunks, as a live stream would push them.
                for chunk in x.chunks(cfg.sample_rate as usize / 100) {
                    fe.push(black_box(chunk), &mut out);
                }
                fe.finish(&mut out);
                black_box(&out);
            })
        });
        g.finish();
        // `cargo test` runs this once as a smoke test (no `--bench`): skip medians.
        if !std::env::args().any(|a| a == "--bench") {
            continue;
        }
        // A plain median for the summary line (criterion's own report has the CI).
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let t = std::time::Instant::now();
                out.clear();
                for chunk in x.chunks(cfg.sample_rate as usize / 100) {
                    fe.push(chunk, &mut out);
                }
                fe.finish(&mut out);
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let med = times[times.len() / 2];
        summary.push(format!(
            "| {name} | {:.0} | {:.2} | {:.0}x |",
            frames as f64 / med,
            med * 1e6 / frames as f64,
            secs / med
        ));
    }
    c.final_summary();
    println!("\n| config | frames/s | µs/frame | real-time factor |\n|---|---|---|---|");
    for line in summary {
        println!("{line}");
    }
}
