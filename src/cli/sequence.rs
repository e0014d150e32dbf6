//! `seqrec sequence`: run a recurrent model over a feature array, carrying state.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use seqrec::bundle::{Backend, ConstantValue};
use seqrec::npy;
use seqrec::sequence::{OrtSpec, SequenceModel, Stream};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
    /// Input frames, .npy float32/float64 shaped [T, I] or [T, 1, I].
    #[arg(long)]
    input: PathBuf,
    /// Output .npy, float32 [T, O]: the first model output that is not a state.
    #[arg(long)]
    out: PathBuf,
    /// native (seqrec's RNN/LSTM/GRU kernels) or ort (ONNX Runtime, any model).
    #[arg(long, default_value = "native")]
    backend: Backend,
    /// Feed the frames in chunks of this many, carrying the state between chunks
    /// (the output does not depend on it). Default: all frames at once.
    #[arg(long)]
    chunk: Option<usize>,
    /// A state pair IN=OUT: output OUT of one call feeds input IN of the next
    /// (e.g. --state h0=hn --state c0=cn). Needed by the ort backend.
    #[arg(long = "state", value_name = "IN=OUT")]
    states: Vec<String>,
    /// A constant extra input NAME=VALUE (integer -> int64, otherwise float32), e.g. --const sr=16000.
    #[arg(long = "const", value_name = "NAME=VALUE")]
    constants: Vec<String>,
    /// Write each final state as DIR/<output name>.npy.
    #[arg(long, value_name = "DIR")]
    final_state: Option<PathBuf>,
}

fn split_pair(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => bail!("{what} `{s}` must look like NAME=VALUE"),
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut spec = OrtSpec::default();
    for s in &a.states {
        let (i, o) = split_pair(s, "--state")?;
        spec.state.push([i, o]);
    }
    for c in &a.constants {
        let (n, v) = split_pair(c, "--const")?;
        let value = match v.parse::<i64>() {
            Ok(i) => ConstantValue::Int(i),
            Err(_) => ConstantValue::Float(
                v.parse::<f64>()
                    .with_context(|| format!("--const {n}: `{v}` is not a number"))?,
            ),
        };
        spec.constants.insert(n, value);
    }
    if a.chunk == Some(0) {
        bail!("--chunk must be at least 1 frame");
    }
    let x = npy::read_f32(&a.input)?;
    // For models whose frame size is dynamic, the array says it.
    spec.input_size = x.shape.last().copied();
    let model = SequenceModel::load(&a.model, a.backend, &spec)?;
    if let (SequenceModel::Native(m), false) = (&model, spec.state.is_empty()) {
        let have: Vec<[String; 2]> = m
            .stream()
            .snapshot()
            .tensors
            .into_iter()
            .map(|t| [t.input, t.output])
            .collect();
        for pair in &spec.state {
            if !have.contains(pair) {
                bail!(
                    "--state {}={}: the model's state pairs are {}",
                    pair[0],
                    pair[1],
                    have.iter()
                        .map(|[i, o]| format!("{i}={o}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let i = model.input_size();
    let t = match x.shape.as_slice() {
        [t, f] if *f == i => *t,
        [t, 1, f] if *f == i => *t,
        [1, t, f] if *f == i => *t,
        s => bail!(
            "{}: shape {s:?} does not fit the model, which takes [T, {i}], [T, 1, {i}] or [1, T, {i}]",
            a.input.display()
        ),
    };
    let mut stream = model.stream()?;
    let o = stream.output_size();
    let mut y = Vec::with_capacity(t * o);
    let t0 = Instant::now();
    let step = a.chunk.unwrap_or(t.max(1));
    for chunk in x.data.chunks(step * i) {
        stream.process(chunk, &mut y)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    // A per-call output (an embedding of the chunk) has one row per chunk.
    let rows = y.len() / o.max(1);
    npy::write_f32(&a.out, &[rows, o], &y)?;
    if model.per_call_output() {
        eprintln!(
            "{}: its output has no time axis: one row per chunk of {step} frames ({rows} rows), each of everything heard so far",
            a.model.display()
        );
    }
    if let Some(dir) = &a.final_state {
        stream.snapshot().save_npy(dir)?;
    }
    eprintln!(
        "{}: {t} frames x {i} -> {o} ({} backend, {:.1} µs/frame), wrote {}",
        a.model.display(),
        format!("{:?}", a.backend).to_lowercase(),
        secs * 1e6 / t.max(1) as f64,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
