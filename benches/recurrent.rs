//! Recurrent stage speed: LSTM(40 -> 128, 2 layers) + dense 12 + softmax, the
//! keyword-spotter-sized model in `fixtures/rnn/lstm_40_128_l2_head12.onnx`.
//!
//! `cargo bench --bench recurrent` runs criterion on each case, then prints a
//! table of medians: per-step latency native vs ONNX Runtime at batch 1, and
//! throughput of [`NativeBatch`] at batch 1, 8 and 64 with the achieved
//! GFLOP/s beside this core's nominal peak.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use seqrec::bundle::Backend;
use seqrec::sequence::{NativeBatch, OrtSpec, SequenceModel, Stream, import_onnx};

fn median_secs(mut f: impl FnMut(), iters: usize) -> f64 {
    let mut v: Vec<f64> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nominal single-core f32 peak: 2 FMA units x SIMD lanes x 2 flops x base clock.
fn peak_gflops(isa: &str) -> (f64, String) {
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(2600.0);
    let lanes = match isa {
        "avx512" => 16.0,
        "avx2+fma" => 8.0,
        _ => 4.0,
    };
    let p = 2.0 * lanes * 2.0 * mhz / 1000.0;
    (p, format!("2 FMA x {lanes} lanes x 2 flops x {mhz:.0} MHz"))
}

fn main() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rnn/lstm_40_128_l2_head12.onnx");
    let native = Arc::new(import_onnx(&path).unwrap());
    let flops = native.flops_per_step();
    let (i, o) = (native.input_size(), native.output_size());
    let spec = OrtSpec {
        state: vec![["h0".into(), "hn".into()], ["c0".into(), "cn".into()]],
        ..OrtSpec::default()
    };
    let ort = SequenceModel::load(&path, Backend::Ort, &spec).unwrap();
    let frame: Vec<f32> = (0..i).map(|k| (k as f32 * 0.37).sin()).collect();
    let chunk: Vec<f32> = (0..100 * i).map(|k| (k as f32 * 0.37).sin()).collect();

    let mut c = Criterion::default().configure_from_args();
    let mut out = Vec::with_capacity(100 * o);
    let mut ns = native.stream();
    let mut os = ort.stream().unwrap();
    {
        let mut g = c.benchmark_group("step_batch1");
        g.throughput(Throughput::Elements(1));
        g.bench_function("native", |b| {
            b.iter(|| {
                out.clear();
                ns.process(black_box(&frame), &mut out).unwrap();
            })
        });
        g.bench_function("ort", |b| {
            b.iter(|| {
                out.clear();
                os.process(black_box(&frame), &mut out).unwrap();
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("chunk100");
        g.throughput(Throughput::Elements(100));
        g.bench_function("native", |b| {
            b.iter(|| {
                out.clear();
                ns.process(black_box(&chunk), &mut out).unwrap();
            })
        });
        g.bench_function("ort", |b| {
            b.iter(|| {
                out.clear();
                os.process(black_box(&chunk), &mut out).unwrap();
            })
        });
        g.finish();
    }
    let batches = [1usize, 8, 64];
    for &bsz in &batches {
        let mut batch = NativeBatch::new(&native, bsz);
        let x = vec![0.1f32; bsz * i];
        let mut y = vec![0.0f32; bsz * o];
        let mut g = c.benchmark_group("batched_step");
        g.throughput(Throughput::Elements(bsz as u64));
        g.bench_function(format!("b{bsz}"), |b| {
            b.iter(|| batch.step(black_box(&x), &mut y).unwrap())
        });
        g.finish();
    }
    c.final_summary();

    // `cargo test --all-targets` runs benches once as smoke tests, without
    // `--bench`: skip the long median table there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // The README table: plain medians of 31 runs.
    let t_native = median_secs(
        || {
            out.clear();
            ns.process(&frame, &mut out).unwrap();
        },
        2000,
    );
    let t_ort = median_secs(
        || {
            out.clear();
            os.process(&frame, &mut out).unwrap();
        },
        200,
    );
    let t_nc = median_secs(
        || {
            out.clear();
            ns.process(&chunk, &mut out).unwrap();
        },
        20,
    ) / 100.0;
    let t_oc = median_secs(
        || {
            out.clear();
            os.process(&chunk, &mut out).unwrap();
        },
        20,
    ) / 100.0;
    let isa = native.isa().name();
    let (peak, how) = peak_gflops(isa);
    println!(
        "\nmodel: {} ({flops} FLOPs per stream-step), kernels: {isa}",
        native.describe()
    );
    println!(
        "\n| case | µs per step | stream-steps/s | GFLOP/s | % of peak |\n|---|---|---|---|---|"
    );
    let row = |name: &str, t: f64, b: usize| {
        let gf = b as f64 * flops as f64 / t / 1e9;
        println!(
            "| {name} | {:.2} | {:.0} | {gf:.1} | {:.0}% |",
            t * 1e6,
            b as f64 / t,
            100.0 * gf / peak
        );
    };
    row("native, batch 1, one frame per call", t_native, 1);
    row("ort, batch 1, one frame per call", t_ort, 1);
    row("native, batch 1, 100-frame chunks", t_nc, 1);
    row("ort, batch 1, 100-frame chunks", t_oc, 1);
    for &bsz in &batches {
        let mut batch = NativeBatch::new(&native, bsz);
        let x = vec![0.1f32; bsz * i];
        let mut y = vec![0.0f32; bsz * o];
        let t = median_secs(|| batch.step(&x, &mut y).unwrap(), (2000 / bsz).max(20));
        row(&format!("native NativeBatch, batch {bsz}"), t, bsz);
    }
    println!(
        "\nnative vs ort per step (batch 1): {:.1}x faster",
        t_ort / t_native
    );
    println!("peak: {peak:.0} GFLOP/s ({how})");
}
