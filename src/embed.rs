//! The embedder stage: a frozen CNN (run by ONNX Runtime) between the
//! features and the recurrent stage.
//!
//! ```text
//!  features ──frames──▶ embedder ──embeddings──▶ sequence
//! ```
//!
//! An embedder looks at a *window* of `window` consecutive feature frames and
//! is called every `step` frames; each call item gives one embedding vector,
//! which is one step of the recurrent stage. Two shapes of it ship:
//!
//! * audio: Google's speech_embedding CNN, 76 mel frames (0.76 s) in, a
//!   96-d vector out, every 8 frames (80 ms);
//! * video: EfficientNet-Lite0, one preprocessed frame in (`window = 1`), a
//!   1280-d vector out per frame.
//!
//! Window `j` covers feature frames `[j * step, j * step + window)`, whatever
//! the chunking of the input: the stream keeps the last frames it needs, so
//! pushing a clip whole or frame by frame gives the same windows. Ready
//! windows are batched into one call of up to `max_batch` items: large in
//! batch mode (throughput), 1 in live mode (latency).
//!
//! The model (its layout, checked once) is shared; each [`EmbedStream`] owns
//! its ONNX Runtime session, because `Session::run` takes `&mut self`.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};
use serde::Deserialize;

use crate::runtime::{self, SessionOptions};
use crate::{Error, Result};

/// `[embedder]`: the CNN between features and the recurrent model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderSection {
    /// The ONNX file, relative to the bundle directory.
    pub onnx: PathBuf,
    /// Name of the model input. Default: its first input.
    #[serde(default)]
    pub input: Option<String>,
    /// Name of the output to read. Default: its first output.
    #[serde(default)]
    pub output: Option<String>,
    /// Feature frames per call item. Default 1.
    #[serde(default = "one")]
    pub window: usize,
    /// Feature frames between call items. Default 1.
    #[serde(default = "one")]
    pub step: usize,
    /// Shape of one item after the batch axis, e.g. `[76, 32, 1]`; its
    /// product must be `window` x the values per feature frame. Default:
    /// the model's own input shape, which must then be fixed.
    #[serde(default)]
    pub input_shape: Option<Vec<usize>>,
    /// Most items per call in batch processing. Default 16. Live input runs
    /// each window as soon as it is complete.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Threads ONNX Runtime may use inside one call. Default 1: batch
    /// processing runs one stream per core instead.
    #[serde(default = "one")]
    pub intra_threads: usize,
}

fn one() -> usize {
    1
}

fn default_batch() -> usize {
    16
}

/// The largest item a bundle may declare (values), so a typo cannot ask for
/// gigabytes: 64 Mi floats, e.g. a 4096x4096 RGB frame.
const MAX_ITEM: usize = 1 << 26;

/// A checked embedder model, shared by streams.
#[derive(Debug, Clone)]
pub struct Embedder {
    path: PathBuf,
    input: String,
    output: String,
    /// Values per feature frame.
    frame_len: usize,
    window: usize,
    step: usize,
    /// Item shape after the batch axis.
    item_shape: Vec<i64>,
    output_size: usize,
    max_batch: usize,
    session: SessionOptions,
    /// The model takes int32 (e.g. MoveNet's RGB 0-255): values are rounded
    /// to the nearest integer before each call.
    int_input: bool,
    /// Most items one call can take: the model's batch axis when it is
    /// fixed, otherwise unlimited.
    batch_limit: usize,
}

impl Embedder {
    /// Opens the model named by `section` for feature frames of `frame_len`
    /// values and checks that the shapes fit. `section.onnx` is used as
    /// given ([`crate::bundle::Bundle`] resolves it against the bundle
    /// directory).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (key `embedder.*`) for sizes that do not fit,
    /// unknown names or a non-float model; [`Error::RuntimeMissing`] or
    /// [`Error::InvalidModel`] from ONNX Runtime.
    pub fn load(section: &EmbedderSection, frame_len: usize) -> Result<Embedder> {
        let path = section.onnx.clone();
        let bad = |key: &str, reason: String| Error::config(format!("embedder.{key}"), reason);
        if section.window == 0 {
            return Err(bad("window", "must be at least 1".into()));
        }
        if section.step == 0 {
            return Err(bad("step", "must be at least 1".into()));
        }
        if section.batch == 0 {
            return Err(bad("batch", "must be at least 1".into()));
        }
        if frame_len == 0 {
            return Err(bad("window", "the features give 0 values per frame".into()));
        }
        let item_len = section.window.saturating_mul(frame_len);
        if item_len > MAX_ITEM {
            return Err(bad(
                "window",
                format!("{item_len} values per item is more than the {MAX_ITEM} allowed"),
            ));
        }
        let opts = SessionOptions {
            intra_threads: section.intra_threads.max(1),
            spinning: false,
        };
        let session = runtime::session(&path, opts)?;
        // Inputs and outputs as `name [shape]`, for messages.
        let list = |v: &[ort::value::Outlet]| {
            v.iter()
                .map(|o| {
                    format!(
                        "{} {:?}",
                        o.name(),
                        o.dtype().tensor_shape().map(|s| s.to_vec())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let listing_text = format!(
            "{}: inputs [{}], outputs [{}]",
            path.display(),
            list(session.inputs()),
            list(session.outputs())
        );
        let listing = || listing_text.clone();
        // The tensor named `name` (manifest key `embedder.{key}`), or the first one.
        fn pick<'a>(
            v: &'a [ort::value::Outlet],
            name: Option<&str>,
            key: &str,
            listing: &str,
        ) -> Result<&'a ort::value::Outlet> {
            match name {
                Some(n) => v.iter().find(|o| o.name() == n).ok_or_else(|| {
                    Error::config(
                        format!("embedder.{key}"),
                        format!("no {key} named `{n}` in {listing}"),
                    )
                }),
                None => v.first().ok_or_else(|| {
                    Error::config(
                        "embedder.onnx",
                        format!("the model has no {key}s ({listing})"),
                    )
                }),
            }
        }
        let input = pick(
            session.inputs(),
            section.input.as_deref(),
            "input",
            &listing_text,
        )?;
        if session.inputs().len() != 1 {
            return Err(bad(
                "onnx",
                format!("an embedder takes exactly one input; {}", listing()),
            ));
        }
        let output = pick(
            session.outputs(),
            section.output.as_deref(),
            "output",
            &listing_text,
        )?;
        let int_input = match input.dtype().tensor_type() {
            Some(TensorElementType::Float32) => false,
            Some(TensorElementType::Int32) => true,
            _ => {
                return Err(bad(
                    "onnx",
                    format!("the input must be a float32 or int32 tensor; {}", listing()),
                ));
            }
        };
        if output.dtype().tensor_type() != Some(TensorElementType::Float32) {
            return Err(bad(
                "onnx",
                format!("the output must be a float32 tensor; {}", listing()),
            ));
        }
        let in_shape = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        if in_shape.is_empty() {
            return Err(bad(
                "onnx",
                format!("the input has no batch axis; {}", listing()),
            ));
        }
        // Most items one call can take: the batch axis when the model fixes it.
        let batch_limit = usize::try_from(in_shape[0])
            .ok()
            .filter(|&b| b > 0)
            .unwrap_or(usize::MAX);
        if section.batch > batch_limit {
            return Err(bad(
                "batch",
                format!(
                    "{} items per call, but the model's batch axis is fixed at {batch_limit}: set batch = {batch_limit}; {}",
                    section.batch,
                    listing()
                ),
            ));
        }
        let item_shape: Vec<i64> = match &section.input_shape {
            Some(s) => {
                if s.len() + 1 != in_shape.len() {
                    return Err(bad(
                        "input_shape",
                        format!(
                            "{s:?} has {} axes but the model input has {} after the batch axis; {}",
                            s.len(),
                            in_shape.len() - 1,
                            listing()
                        ),
                    ));
                }
                for (k, (&want, &have)) in s.iter().zip(&in_shape[1..]).enumerate() {
                    if have >= 0 && have as usize != want {
                        return Err(bad(
                            "input_shape",
                            format!(
                                "axis {} is {want} but the model fixes it at {have}; {}",
                                k + 1,
                                listing()
                            ),
                        ));
                    }
                }
                s.iter().map(|&d| d as i64).collect()
            }
            None => {
                if in_shape[1..].iter().any(|&d| d < 0) {
                    return Err(bad(
                        "input_shape",
                        format!(
                            "the model's input has dynamic axes after the batch axis: give input_shape; {}",
                            listing()
                        ),
                    ));
                }
                in_shape[1..].to_vec()
            }
        };
        let declared: usize = item_shape.iter().map(|&d| d as usize).product();
        if declared != item_len {
            return Err(bad(
                "input_shape",
                format!(
                    "one item is {item_shape:?} = {declared} values, but a window of {} frames of {frame_len} values is {item_len}",
                    section.window
                ),
            ));
        }
        let out_shape = output
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let mut output_size = 1usize;
        let mut dynamic = false;
        for &d in out_shape.iter().skip(1) {
            if d < 0 {
                dynamic = true;
            } else {
                output_size *= d as usize;
            }
        }
        let mut e = Embedder {
            path,
            input: input.name().to_string(),
            output: output.name().to_string(),
            frame_len,
            window: section.window,
            step: section.step,
            item_shape,
            output_size,
            max_batch: section.batch,
            session: opts,
            int_input,
            batch_limit,
        };
        if out_shape.is_empty() || dynamic {
            // Find out by running one item of zeros.
            let mut session = session;
            let mut shape = e.call_shape();
            let mut y = Vec::new();
            run_one(
                &e,
                &mut session,
                &mut shape,
                &vec![0.0f32; item_len],
                (1, &mut Vec::new()),
                &mut y,
                true,
            )?;
            e.output_size = y.len();
        }
        if e.output_size == 0 {
            return Err(bad(
                "onnx",
                format!("the output has no values; {}", listing()),
            ));
        }
        Ok(e)
    }

    /// The input shape of a call: `[1, item shape...]` (the batch axis is
    /// set per call).
    fn call_shape(&self) -> Vec<i64> {
        let mut shape = Vec::with_capacity(self.item_shape.len() + 1);
        shape.push(1);
        shape.extend_from_slice(&self.item_shape);
        shape
    }

    /// The ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Feature frames per item.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Feature frames between items.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Values per feature frame in.
    pub fn input_size(&self) -> usize {
        self.frame_len
    }

    /// Values per embedding out.
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// Most items per call in batch processing.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// A new stream with its own session, batching up to `max_batch` items
    /// per call (1 = run every window at once, for live input; never more
    /// than a model with a fixed batch axis takes).
    ///
    /// # Errors
    /// As [`runtime::session`].
    pub fn stream(&self, max_batch: usize) -> Result<EmbedStream> {
        self.stream_with_threads(max_batch, self.session.intra_threads)
    }

    /// As [`Embedder::stream`], with `intra_threads` threads for ONNX
    /// Runtime inside each call (at least the bundle's `intra_threads`):
    /// for fewer inputs than cores, when one stream must use several.
    ///
    /// # Errors
    /// As [`runtime::session`].
    pub fn stream_with_threads(
        &self,
        max_batch: usize,
        intra_threads: usize,
    ) -> Result<EmbedStream> {
        // Live streams (one item per call) keep ONNX Runtime's spinning
        // threads for latency (live video CNN: 5.2 vs 8.5 ms per frame);
        // batch streams turn it off so decoding gets the cores.
        let opts = SessionOptions {
            intra_threads: intra_threads.max(self.session.intra_threads).max(1),
            spinning: max_batch <= 1,
        };
        let session = runtime::session(&self.path, opts)?;
        let mut s = EmbedStream::with_session(self, session)?;
        s.max_batch = max_batch.max(1).min(self.batch_limit);
        if self.step != self.window {
            // Overlapping (or gapped) windows are gathered into `batch`.
            s.batch.reserve(s.max_batch * self.window * self.frame_len);
        }
        Ok(s)
    }
}

impl Embedder {
    /// A stream that only gathers windows ([`EmbedStream::push_windows`]):
    /// no session of its own, so a server's thousand streams share one
    /// [`EmbedRunner`].
    pub fn windows_only(&self) -> EmbedStream {
        EmbedStream {
            model: self.clone(),
            session: None,
            max_batch: 1,
            pending: Vec::new(),
            base: 0,
            next: 0,
            batch: Vec::new(),
            shape: self.call_shape(),
            ints: Vec::new(),
        }
    }

    /// A session for the windows of many streams, with `intra_threads`
    /// ONNX Runtime threads per call.
    ///
    /// # Errors
    /// As [`runtime::session`].
    pub fn runner(&self, intra_threads: usize) -> Result<EmbedRunner> {
        let opts = SessionOptions {
            intra_threads: intra_threads.max(1),
            spinning: false,
        };
        Ok(EmbedRunner {
            model: self.clone(),
            session: runtime::session(&self.path, opts)?,
            shape: self.call_shape(),
            ints: Vec::new(),
        })
    }
}

/// One stream through an [`Embedder`]: the frames not yet consumed, and a
/// session.
pub struct EmbedStream {
    model: Embedder,
    /// `None` for a stream whose windows a server runs together with other
    /// streams' ([`Embedder::windows_only`]).
    session: Option<Session>,
    max_batch: usize,
    /// Feature frames from absolute frame `base` on.
    pending: Vec<f32>,
    base: u64,
    /// Start (absolute frame) of the next window.
    next: u64,
    /// Items gathered for the next call (windows that are not back to back).
    batch: Vec<f32>,
    shape: Vec<i64>,
    /// The call's items as int32, for int32 models.
    ints: Vec<i32>,
}

impl std::fmt::Debug for EmbedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedStream")
            .field("model", &self.model.path)
            .field("next", &self.next)
            .finish()
    }
}

impl EmbedStream {
    fn with_session(model: &Embedder, session: Session) -> Result<EmbedStream> {
        let shape = model.call_shape();
        Ok(EmbedStream {
            model: model.clone(),
            session: Some(session),
            max_batch: model.max_batch,
            pending: Vec::new(),
            base: 0,
            next: 0,
            batch: Vec::new(),
            shape,
            ints: Vec::new(),
        })
    }

    /// Values per embedding.
    pub fn output_size(&self) -> usize {
        self.model.output_size
    }

    /// Feeds feature frames (`n * input_size` values); appends the
    /// embeddings of the windows completed and run so far to `out`. With a
    /// batch size above 1, complete windows may wait for the batch to fill;
    /// [`EmbedStream::flush`] runs them.
    ///
    /// # Errors
    /// [`Error::Shape`] for a partial frame; ONNX Runtime failures.
    pub fn push(&mut self, frames: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let d = self.model.frame_len;
        if !frames.len().is_multiple_of(d) {
            return Err(Error::Shape(format!(
                "{} values is not a whole number of {d}-value feature frames",
                frames.len()
            )));
        }
        self.pending.extend_from_slice(frames);
        self.run(out, false)
    }

    /// Runs every complete window still waiting for its batch to fill.
    ///
    /// # Errors
    /// ONNX Runtime failures.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<()> {
        self.run(out, true)
    }

    /// Forgets the frames and windows of the current input.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.batch.clear();
        self.base = 0;
        self.next = 0;
    }

    /// Runs the complete windows in calls of `max_batch` items (the rest
    /// too when `flush`), then drops the frames no future window needs.
    fn run(&mut self, out: &mut Vec<f32>, flush: bool) -> Result<()> {
        let Some(session) = self.session.as_mut() else {
            return Err(Error::config(
                "embedder",
                "this stream has no session of its own: take its windows with push_windows",
            ));
        };
        let (d, w, step) = (self.model.frame_len, self.model.window, self.model.step);
        let item = w * d;
        let have = self.base + (self.pending.len() / d) as u64;
        let end = self.next + w as u64;
        let mut ready = if have >= end {
            ((have - end) / step as u64 + 1) as usize
        } else {
            0
        };
        while ready >= self.max_batch || (flush && ready > 0) {
            let n = ready.min(self.max_batch);
            let off = (self.next - self.base) as usize * d;
            if step == w {
                // Back-to-back windows (e.g. one video frame each) are
                // already one contiguous batch.
                let items = &self.pending[off..off + n * item];
                run_one(
                    &self.model,
                    session,
                    &mut self.shape,
                    items,
                    (n, &mut self.ints),
                    out,
                    false,
                )?;
            } else {
                self.batch.clear();
                for k in 0..n {
                    let o = off + k * step * d;
                    self.batch.extend_from_slice(&self.pending[o..o + item]);
                }
                let (model, batch) = (&self.model, &self.batch);
                run_one(
                    model,
                    session,
                    &mut self.shape,
                    batch,
                    (n, &mut self.ints),
                    out,
                    false,
                )?;
            }
            self.next += (n * step) as u64;
            ready -= n;
        }
        self.trim();
        Ok(())
    }

    /// Drops the frames no future window needs.
    fn trim(&mut self) {
        let d = self.model.frame_len;
        let have = self.base + (self.pending.len() / d) as u64;
        let keep_from = self.next.min(have);
        if keep_from > self.base {
            let n = (keep_from - self.base) as usize * d;
            self.pending.drain(..n);
            self.base = keep_from;
        }
    }

    /// Feeds feature frames and appends every window they complete to
    /// `windows` (`window * frame_len` values each) without running the
    /// model: for a server that runs the windows of many streams in one
    /// call ([`EmbedRunner`]). Returns the number of windows appended.
    ///
    /// # Errors
    /// [`Error::Shape`] for a partial frame.
    pub fn push_windows(&mut self, frames: &[f32], windows: &mut Vec<f32>) -> Result<usize> {
        let (d, w, step) = (self.model.frame_len, self.model.window, self.model.step);
        if !frames.len().is_multiple_of(d) {
            return Err(Error::Shape(format!(
                "{} values is not a whole number of {d}-value feature frames",
                frames.len()
            )));
        }
        self.pending.extend_from_slice(frames);
        let have = self.base + (self.pending.len() / d) as u64;
        let mut n = 0;
        while self.next + w as u64 <= have {
            let off = (self.next - self.base) as usize * d;
            windows.extend_from_slice(&self.pending[off..off + w * d]);
            self.next += step as u64;
            n += 1;
        }
        self.trim();
        Ok(n)
    }

    /// The frames this stream holds for its next windows, and where they
    /// and the next window start (absolute frames): its whole state.
    pub fn window_state(&self) -> (&[f32], u64, u64) {
        (&self.pending, self.base, self.next)
    }

    /// Sets the state [`EmbedStream::window_state`] gave (on the same model).
    ///
    /// # Errors
    /// [`Error::Shape`] if the frames are not whole frames of this model or
    /// the positions do not fit them.
    pub fn set_window_state(&mut self, pending: &[f32], base: u64, next: u64) -> Result<()> {
        let d = self.model.frame_len;
        if !pending.len().is_multiple_of(d) || next < base {
            return Err(Error::Shape(format!(
                "embedder state of {} values from frame {base}, next window at {next}, does not fit {d}-value frames",
                pending.len()
            )));
        }
        self.pending.clear();
        self.pending.extend_from_slice(pending);
        self.batch.clear();
        (self.base, self.next) = (base, next);
        Ok(())
    }
}

/// One session running the windows of many streams: a server gathers the
/// windows its streams completed ([`EmbedStream::push_windows`]) and runs
/// them in one call, instead of one session and one call per stream.
pub struct EmbedRunner {
    model: Embedder,
    session: Session,
    shape: Vec<i64>,
    ints: Vec<i32>,
}

impl std::fmt::Debug for EmbedRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedRunner")
            .field("model", &self.model.path)
            .finish()
    }
}

/// Most windows per call of an [`EmbedRunner`] (bounds its memory).
pub const RUNNER_MAX_BATCH: usize = 64;

impl EmbedRunner {
    /// Runs `items` (whole windows, back to back) and appends one embedding
    /// per window to `out`, in calls of at most [`RUNNER_MAX_BATCH`] (or the
    /// model's fixed batch) items.
    ///
    /// # Errors
    /// [`Error::Shape`] for a partial window; ONNX Runtime failures.
    pub fn run(&mut self, items: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let item = self.model.window * self.model.frame_len;
        if !items.len().is_multiple_of(item) {
            return Err(Error::Shape(format!(
                "{} values is not a whole number of {item}-value windows",
                items.len()
            )));
        }
        let per_call = RUNNER_MAX_BATCH.min(self.model.batch_limit).max(1) * item;
        for chunk in items.chunks(per_call) {
            run_one(
                &self.model,
                &mut self.session,
                &mut self.shape,
                chunk,
                (chunk.len() / item, &mut self.ints),
                out,
                false,
            )?;
        }
        Ok(())
    }
}

/// One ONNX Runtime call of `model` on `n` items; appends the outputs to
/// `out`. `ints` holds the items rounded to int32 for an int32 model (kept
/// by the stream, so that calls do not allocate). `probe` skips the output
/// size check (while finding it out).
fn run_one(
    model: &Embedder,
    session: &mut Session,
    shape: &mut [i64],
    items: &[f32],
    (n, ints): (usize, &mut Vec<i32>),
    out: &mut Vec<f32>,
    probe: bool,
) -> Result<()> {
    shape[0] = n as i64;
    let outputs = if model.int_input {
        ints.clear();
        // `as` saturates: out-of-range values cannot wrap.
        ints.extend(items.iter().map(|&v| v.round() as i32));
        let input = TensorRef::from_array_view((&*shape, &ints[..]))?;
        session.run(ort::inputs![model.input.as_str() => input])?
    } else {
        let input = TensorRef::from_array_view((&*shape, items))?;
        session.run(ort::inputs![model.input.as_str() => input])?
    };
    let (_, y) = outputs[model.output.as_str()].try_extract_tensor::<f32>()?;
    if !probe && y.len() != n * model.output_size {
        return Err(Error::Shape(format!(
            "{}: output `{}` has {} values for {n} items; expected {} per item",
            model.path.display(),
            model.output,
            y.len(),
            model.output_size
        )));
    }
    out.extend_from_slice(y);
    Ok(())
}
