//! The generic ONNX Runtime runner: any model whose state goes in and out as
//! tensors.
//!
//! The state pairs (`h0=hn`, `state=stateN`, ...) and constant extra inputs
//! (`sr=16000`) are declared, by the bundle manifest or on the command line;
//! the remaining input is the per-step input and the first remaining output is
//! the result. Two input layouts are recognised:
//!
//! * 3-D `[T, 1, I]` (time-major, batch 1, as `torch.onnx.export` writes
//!   recurrent models) or `[1, T, I]` (batch first, `nn.LSTM(batch_first=True)`;
//!   told apart by which of the first two axes is fixed at 1): a whole chunk
//!   goes in one call;
//! * 2-D `[1, I]` (one window per call, e.g. Silero VAD's 576 samples): one
//!   call per frame, state carried between calls.
//!
//! The output is per frame (`[T, O]`, `[T, 1, O]`, `[1, T, O]`), or, when it
//! has no time axis (`[1, O]`: e.g. resemblyzer's utterance embedding of the
//! final `h`), one row per call: what the model makes of everything heard so
//! far ([`OrtModel::per_call_output`]).
//!
//! Each stream owns its `Session` (`run` takes `&mut self`), so make one
//! stream per worker thread and [`Stream::reset`] it between inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::{State, StateTensor, Stream};
use crate::bundle::ConstantValue;
use crate::runtime::{self, SessionOptions};
use crate::{Error, Result};

/// What the ort backend needs to know beyond the ONNX file.
#[derive(Debug, Clone, Default)]
pub struct OrtSpec {
    /// `[input, output]` state pairs.
    pub state: Vec<[String; 2]>,
    /// Constant extra inputs.
    pub constants: BTreeMap<String, ConstantValue>,
    /// The per-step input (default: the first input that is neither state nor constant).
    pub input: Option<String>,
    /// The output to return (default: the first output that is not a state).
    pub output: Option<String>,
    /// Session options.
    pub session: SessionOptions,
    /// Values per input frame, for models whose input's last axis is
    /// dynamic (e.g. Silero VAD's `[N, samples]`). Checked against the
    /// model when its axis is fixed.
    pub input_size: Option<usize>,
}

#[derive(Debug, Clone)]
struct StateSlot {
    input: String,
    output: String,
    shape: Vec<usize>,
}

/// A model run by ONNX Runtime: the resolved input/output layout. Shared by
/// streams; each [`OrtStream`] builds its own session.
#[derive(Debug)]
pub struct OrtModel {
    path: PathBuf,
    spec: OrtSpec,
    input: String,
    output: String,
    input_size: usize,
    output_size: usize,
    /// Rank of the per-step input: 3 (`[T,1,I]` or `[1,T,I]`, chunk per
    /// call) or 2 (`[1,I]`, frame per call).
    input_rank: usize,
    /// The chunk goes in as `[1, T, I]` (batch first).
    batch_first: bool,
    /// The output is one row per call, not per frame.
    per_call: bool,
    states: Vec<StateSlot>,
    /// Constants with the rank ONNX Runtime expects (0 = scalar, 1 = `[1]`).
    constants: Vec<(String, ConstantValue, usize)>,
}

fn shape_of(vt: &ValueType) -> Option<Vec<i64>> {
    vt.tensor_shape().map(|s| s.to_vec())
}

impl OrtModel {
    /// Opens `path` with ONNX Runtime and checks the declared names and shapes.
    ///
    /// # Errors
    /// [`Error::RuntimeMissing`], [`Error::InvalidModel`] if ONNX Runtime
    /// rejects the file, [`Error::InvalidConfig`] for an unknown name or an
    /// unusable shape (the message lists the model's inputs and outputs).
    pub fn load(path: &Path, spec: OrtSpec) -> Result<OrtModel> {
        let session = runtime::session(path, spec.session)?;
        let ins: Vec<(String, ValueType)> = session
            .inputs()
            .iter()
            .map(|o| (o.name().to_string(), o.dtype().clone()))
            .collect();
        let outs: Vec<(String, ValueType)> = session
            .outputs()
            .iter()
            .map(|o| (o.name().to_string(), o.dtype().clone()))
            .collect();
        let listing = || {
            let fmt = |v: &[(String, ValueType)]| {
                v.iter()
                    .map(|(n, t)| format!("{n} {:?}", shape_of(t).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{}: inputs [{}], outputs [{}]",
                path.display(),
                fmt(&ins),
                fmt(&outs)
            )
        };
        let find = |v: &[(String, ValueType)], name: &str, what: &str| {
            v.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| {
                    Error::config(what, format!("no {what} named `{name}` in {}", listing()))
                })
        };
        let mut states = Vec::new();
        for [i, o] in &spec.state {
            let ti = find(&ins, i, "input")?;
            find(&outs, o, "output")?;
            let shape = shape_of(&ti).ok_or_else(|| {
                Error::config("state", format!("state input `{i}` is not a tensor"))
            })?;
            if ti.tensor_type() != Some(TensorElementType::Float32) {
                return Err(Error::config(
                    "state",
                    format!("state input `{i}` is not float32"),
                ));
            }
            // Dynamic axes (batch) are 1 for a single stream.
            let shape = shape
                .iter()
                .map(|&d| if d < 0 { 1 } else { d as usize })
                .collect();
            states.push(StateSlot {
                input: i.clone(),
                output: o.clone(),
                shape,
            });
        }
        let mut constants = Vec::new();
        for (name, v) in &spec.constants {
            let t = find(&ins, name, "input")?;
            let rank = shape_of(&t).map_or(0, |s| s.len());
            let ok = match v {
                ConstantValue::Int(_) => t.tensor_type() == Some(TensorElementType::Int64),
                ConstantValue::Float(_) => t.tensor_type() == Some(TensorElementType::Float32),
            };
            if !ok || rank > 1 {
                return Err(Error::config(
                    "constants",
                    format!(
                        "`{name}` must be an int64 or float32 scalar input ({})",
                        listing()
                    ),
                ));
            }
            constants.push((name.clone(), v.clone(), rank));
        }
        let is_state_in = |n: &str| spec.state.iter().any(|[i, _]| i == n);
        let is_state_out = |n: &str| spec.state.iter().any(|[_, o]| o == n);
        let input = match &spec.input {
            Some(n) => n.clone(),
            None => ins
                .iter()
                .map(|(n, _)| n)
                .find(|n| !is_state_in(n) && !spec.constants.contains_key(*n))
                .cloned()
                .ok_or_else(|| {
                    Error::config("input", format!("no free input left ({})", listing()))
                })?,
        };
        let output = match &spec.output {
            Some(n) => n.clone(),
            None => outs
                .iter()
                .map(|(n, _)| n)
                .find(|n| !is_state_out(n))
                .cloned()
                .ok_or_else(|| {
                    Error::config("output", format!("no free output left ({})", listing()))
                })?,
        };
        let in_shape = shape_of(&find(&ins, &input, "input")?).unwrap_or_default();
        let out_shape = shape_of(&find(&outs, &output, "output")?).unwrap_or_default();
        let undeclared: Vec<&String> = ins
            .iter()
            .map(|(n, _)| n)
            .filter(|n| **n != input && !is_state_in(n) && !spec.constants.contains_key(*n))
            .collect();
        if !undeclared.is_empty() {
            return Err(Error::config(
                "state",
                format!(
                    "inputs {undeclared:?} are neither the step input, a state (--state IN=OUT) nor a constant ({})",
                    listing()
                ),
            ));
        }
        let last = |s: &[i64], what: &str| match s.last() {
            Some(&d) if d > 0 => Ok(d as usize),
            _ => Err(Error::config(
                what,
                format!(
                    "the last axis of `{what}` must have a fixed size ({})",
                    listing()
                ),
            )),
        };
        let input_rank = in_shape.len();
        if !(input_rank == 2 || input_rank == 3) {
            return Err(Error::config(
                "input",
                format!(
                    "`{input}` must be [T, 1, I], [1, T, I] or [1, I] ({})",
                    listing()
                ),
            ));
        }
        // [1, T, I] (nn.LSTM(batch_first=True)): batch axis first and fixed
        // at 1, time second; [T, 1, I] otherwise.
        let batch_first = input_rank == 3 && in_shape[0] == 1 && in_shape[1] != 1;
        // An output with no time axis (every axis but the last fixed at 1,
        // e.g. an utterance embedding [1, 256]) is one row per call: what
        // the model makes of the chunk (and the state before it).
        let per_call = input_rank == 3
            && out_shape.len() >= 2
            && out_shape[..out_shape.len() - 1].iter().all(|&d| d == 1);
        let input_size = match (in_shape.last(), spec.input_size) {
            (Some(&d), Some(want)) if d > 0 && d as usize != want => {
                return Err(Error::config(
                    "input",
                    format!(
                        "the features give {want} values per frame, `{input}` takes {d} ({})",
                        listing()
                    ),
                ));
            }
            (Some(&d), _) if d > 0 => d as usize,
            (_, Some(want)) => want,
            _ => last(&in_shape, &input)?,
        };
        Ok(OrtModel {
            path: path.to_path_buf(),
            input_size,
            output_size: last(&out_shape, &output)?,
            input,
            output,
            input_rank,
            batch_first,
            per_call,
            states,
            constants,
            spec,
        })
    }

    /// Whether the output is one row per call (of the whole chunk) rather
    /// than one per frame: [`Stream::process`] then appends `output_size`
    /// values per call.
    pub fn per_call_output(&self) -> bool {
        self.per_call
    }

    /// Values per input frame.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Values per output frame.
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// A new stream with its own session, in the initial (zero) state.
    ///
    /// # Errors
    /// [`Error::InvalidModel`] if the session cannot be built.
    pub fn stream(self: &std::sync::Arc<Self>) -> Result<OrtStream> {
        let mut s = self.shared_stream();
        s.session = Some(self.session()?);
        Ok(s)
    }

    /// A stream without a session of its own, in the initial state: a
    /// server runs many of these on one session
    /// ([`OrtStream::process_with`]): a session per stream would cost ~10 MB
    /// and a model load per connection.
    pub fn shared_stream(self: &std::sync::Arc<Self>) -> OrtStream {
        OrtStream {
            model: std::sync::Arc::clone(self),
            session: None,
            state: self
                .states
                .iter()
                .map(|s| vec![0.0; s.shape.iter().product()])
                .collect(),
        }
    }

    /// A session on this model (for [`OrtStream::process_with`]).
    ///
    /// # Errors
    /// [`Error::InvalidModel`] if the session cannot be built.
    pub fn session(&self) -> Result<Session> {
        runtime::session(&self.path, self.spec.session)
    }
}

impl OrtModel {
    /// Appends the constant inputs (`sr = 16000`, ...) of every call.
    fn push_constants(&self, inputs: &mut Vec<(String, SessionInputValue<'_>)>) -> Result<()> {
        for (name, v, rank) in &self.constants {
            let shape: Vec<i64> = vec![1; *rank];
            let value: SessionInputValue<'_> = match v {
                ConstantValue::Int(i) => ort::value::Tensor::from_array((shape, vec![*i]))?.into(),
                ConstantValue::Float(f) => {
                    ort::value::Tensor::from_array((shape, vec![*f as f32]))?.into()
                }
            };
            inputs.push((name.clone(), value));
        }
        Ok(())
    }

    /// Whether many streams can be stepped in one call: a frame-per-call
    /// model (`[1, I]` input, whose first axis is then the batch) whose every
    /// state tensor has exactly one axis of size 1 (Silero VAD's state is
    /// `[2, 1, 128]`): that axis is where streams are stacked.
    pub fn batch_axes(&self) -> Option<Vec<usize>> {
        if self.input_rank != 2 {
            return None;
        }
        self.states
            .iter()
            .map(|st| {
                let ones: Vec<usize> = (0..st.shape.len()).filter(|&k| st.shape[k] == 1).collect();
                (ones.len() == 1).then(|| ones[0])
            })
            .collect()
    }

    /// One frame of each of `streams` in one call on `session`: `x` holds
    /// their frames back to back, states are stacked along
    /// [`OrtModel::batch_axes`]; appends each stream's output to its `out`.
    /// Results equal the streams stepped alone up to ONNX Runtime's
    /// batch-size-dependent kernels (not bit for bit; see `seqrec serve`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a model that does not batch;
    /// ONNX Runtime failures (e.g. a model whose batch axis is fixed at 1)
    /// and shape mismatches, with no stream's state changed.
    pub fn step_many(
        &self,
        session: &mut Session,
        streams: &mut [(&mut OrtStream, &mut Vec<f32>)],
        x: &[f32],
    ) -> Result<()> {
        let n = streams.len();
        let axes = self
            .batch_axes()
            .ok_or_else(|| Error::config("backend", "this model cannot step streams together"))?;
        if x.len() != n * self.input_size {
            return Err(Error::Shape(format!(
                "{n} frames of {} values expected, got {}",
                self.input_size,
                x.len()
            )));
        }
        // stacked states: [outer][stream][inner]
        let mut stacked: Vec<(Vec<i64>, Vec<f32>)> = Vec::with_capacity(self.states.len());
        for (k, (slot, &axis)) in self.states.iter().zip(&axes).enumerate() {
            let outer: usize = slot.shape[..axis].iter().product();
            let inner: usize = slot.shape[axis + 1..].iter().product();
            let mut data = Vec::with_capacity(n * outer * inner);
            for o in 0..outer {
                for (st, _) in streams.iter() {
                    data.extend_from_slice(&st.state[k][o * inner..(o + 1) * inner]);
                }
            }
            let mut shape: Vec<i64> = slot.shape.iter().map(|&d| d as i64).collect();
            shape[axis] = n as i64;
            stacked.push((shape, data));
        }
        let mut inputs: Vec<(String, SessionInputValue<'_>)> =
            Vec::with_capacity(1 + self.states.len() + self.constants.len());
        inputs.push((
            self.input.clone(),
            TensorRef::from_array_view((vec![n as i64, self.input_size as i64], x))?.into(),
        ));
        for (slot, (shape, data)) in self.states.iter().zip(&stacked) {
            inputs.push((
                slot.input.clone(),
                TensorRef::from_array_view((shape.clone(), data.as_slice()))?.into(),
            ));
        }
        self.push_constants(&mut inputs)?;
        let outputs = session.run(inputs)?;
        let (_, y) = outputs[self.output.as_str()].try_extract_tensor::<f32>()?;
        if y.len() != n * self.output_size {
            return Err(Error::Shape(format!(
                "{}: output `{}` has {} values for {n} streams; expected {} each",
                self.path.display(),
                self.output,
                y.len(),
                self.output_size
            )));
        }
        let mut new_states = Vec::with_capacity(self.states.len());
        for (slot, (_, data)) in self.states.iter().zip(&stacked) {
            let (_, st) = outputs[slot.output.as_str()].try_extract_tensor::<f32>()?;
            if st.len() != data.len() {
                return Err(Error::Shape(format!(
                    "{}: state output `{}` has {} values for {n} streams, expected {}",
                    self.path.display(),
                    slot.output,
                    st.len(),
                    data.len()
                )));
            }
            new_states.push(st.to_vec());
        }
        for (i, (st, out)) in streams.iter_mut().enumerate() {
            out.extend_from_slice(&y[i * self.output_size..(i + 1) * self.output_size]);
            for (k, (slot, &axis)) in self.states.iter().zip(&axes).enumerate() {
                let outer: usize = slot.shape[..axis].iter().product();
                let inner: usize = slot.shape[axis + 1..].iter().product();
                for o in 0..outer {
                    let from = (o * n + i) * inner;
                    st.state[k][o * inner..(o + 1) * inner]
                        .copy_from_slice(&new_states[k][from..from + inner]);
                }
            }
        }
        Ok(())
    }
}

/// One stream on an [`OrtModel`]: its state, and its own session unless a
/// server lends one ([`OrtModel::shared_stream`]).
pub struct OrtStream {
    model: std::sync::Arc<OrtModel>,
    session: Option<Session>,
    state: Vec<Vec<f32>>,
}

impl std::fmt::Debug for OrtStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtStream")
            .field("model", &self.model)
            .finish()
    }
}

impl OrtStream {
    /// As [`Stream::process`], on `session` (a session of this stream's
    /// model) instead of the stream's own.
    ///
    /// # Errors
    /// As [`Stream::process`].
    pub fn process_with(
        &mut self,
        session: &mut Session,
        frames: &[f32],
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let i = self.model.input_size;
        if !frames.len().is_multiple_of(i) {
            return Err(Error::Shape(format!(
                "input of {} values is not a whole number of {i}-value frames",
                frames.len()
            )));
        }
        let t = frames.len() / i;
        if t == 0 {
            return Ok(());
        }
        if self.model.input_rank == 3 {
            self.call(session, frames, t, out)
        } else {
            for f in frames.chunks_exact(i) {
                self.call(session, f, 1, out)?;
            }
            Ok(())
        }
    }

    /// One ONNX Runtime call on `t` frames.
    fn call(
        &mut self,
        session: &mut Session,
        frames: &[f32],
        t: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let m = &*self.model;
        let shape: Vec<i64> = if m.input_rank == 3 && m.batch_first {
            vec![1, t as i64, m.input_size as i64]
        } else if m.input_rank == 3 {
            vec![t as i64, 1, m.input_size as i64]
        } else {
            vec![t as i64, m.input_size as i64]
        };
        let mut inputs: Vec<(String, SessionInputValue<'_>)> =
            Vec::with_capacity(1 + m.states.len() + m.constants.len());
        inputs.push((
            m.input.clone(),
            TensorRef::from_array_view((shape, frames))?.into(),
        ));
        for (slot, data) in m.states.iter().zip(&self.state) {
            inputs.push((
                slot.input.clone(),
                TensorRef::from_array_view((slot.shape.clone(), data.as_slice()))?.into(),
            ));
        }
        m.push_constants(&mut inputs)?;
        let outputs = session.run(inputs)?;
        let (_, y) = outputs[m.output.as_str()].try_extract_tensor::<f32>()?;
        let rows = if m.per_call { 1 } else { t };
        if y.len() != rows * m.output_size {
            return Err(Error::Shape(format!(
                "{}: output `{}` has {} values for {t} frames; expected {} per frame (or per call)",
                m.path.display(),
                m.output,
                y.len(),
                m.output_size
            )));
        }
        out.extend_from_slice(y);
        for (slot, data) in m.states.iter().zip(self.state.iter_mut()) {
            let (_, s) = outputs[slot.output.as_str()].try_extract_tensor::<f32>()?;
            if s.len() != data.len() {
                return Err(Error::Shape(format!(
                    "{}: state output `{}` has {} values, its input `{}` takes {}",
                    m.path.display(),
                    slot.output,
                    s.len(),
                    slot.input,
                    data.len()
                )));
            }
            data.copy_from_slice(s);
        }
        Ok(())
    }
}

impl Stream for OrtStream {
    fn input_size(&self) -> usize {
        self.model.input_size
    }

    fn output_size(&self) -> usize {
        self.model.output_size
    }

    fn process(&mut self, frames: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let Some(mut session) = self.session.take() else {
            return Err(Error::config(
                "backend",
                "this ONNX Runtime stream has no session of its own: run it with process_with",
            ));
        };
        let r = self.process_with(&mut session, frames, out);
        self.session = Some(session);
        r
    }

    fn as_ort(&mut self) -> Option<&mut OrtStream> {
        Some(self)
    }

    fn reset(&mut self) {
        for s in &mut self.state {
            s.fill(0.0);
        }
    }

    fn snapshot(&self) -> State {
        State {
            tensors: self
                .model
                .states
                .iter()
                .zip(&self.state)
                .map(|(slot, data)| StateTensor {
                    input: slot.input.clone(),
                    output: slot.output.clone(),
                    shape: slot.shape.clone(),
                    data: data.clone(),
                })
                .collect(),
        }
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        if state.tensors.len() != self.state.len()
            || state
                .tensors
                .iter()
                .zip(&self.state)
                .any(|(t, s)| t.data.len() != s.len())
        {
            return Err(Error::Shape(format!(
                "state does not fit {}: expected {} tensors of sizes {:?}",
                self.model.path.display(),
                self.state.len(),
                self.state.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        for (t, s) in state.tensors.iter().zip(self.state.iter_mut()) {
            s.copy_from_slice(&t.data);
        }
        Ok(())
    }
}
