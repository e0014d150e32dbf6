//! The stateful recurrent stage: feature frames in, one output per frame out,
//! with the hidden state carried from chunk to chunk.
//!
//! A model is loaded once and shared (`Arc`, immutable); each stream gets its
//! own [`Stream`] holding its state. Two backends:
//!
//! * **native** ([`NativeModel`]): seqrec's own RNN/LSTM/GRU kernels, weights
//!   imported from an ONNX file as `torch.onnx.export` writes it. Output is
//!   bit-identical whatever the chunking.
//! * **ort** ([`OrtModel`]): ONNX Runtime runs any model whose state goes in
//!   and out as tensors (declared as `input=output` pairs), plus constant
//!   extra inputs (e.g. Silero VAD's `sr`).
//! * **templates** ([`TemplateModel`]): no network; the last K steps are
//!   aligned with keyword templates by dynamic time warping (the few-shot
//!   keywords `seqrec enroll` makes). Its state is that window.
//!
//! When to reset: call [`Stream::reset`] whenever the input is not the
//! continuation of what came before — a new file, a gap in capture, a changed
//! device. Never share a stream between two inputs: state leaking between
//! streams is the classic bug of streaming recognizers.

mod cells;
pub mod kernels;
mod onnx_import;
mod ort_runner;
pub mod templates;

use std::path::Path;
use std::sync::Arc;

pub use cells::{
    Cell, HeadActivation, HeadWeights, LayerWeights, NativeBatch, NativeModel, NativeStream,
    RnnActivation, StateNames,
};
pub use onnx_import::import_onnx;
pub use ort_runner::{OrtModel, OrtSpec, OrtStream};
pub use templates::{TemplateModel, TemplateStream};

use crate::bundle::Backend;
use crate::{Error, Result};

/// One state tensor of a stream, with the graph names it travels under.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateTensor {
    /// Graph input that receives it (e.g. `h0`).
    pub input: String,
    /// Graph output that produces it (e.g. `hn`).
    pub output: String,
    /// Its shape, e.g. `[layers, 1, hidden]`.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A copy of a stream's state: to pause a stream, save it, or move it to
/// another worker. Restore it into a stream of the same model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The tensors, in the model's state order.
    pub tensors: Vec<StateTensor>,
}

impl State {
    /// Writes each tensor as `DIR/<output name>.npy`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory or a file cannot be written.
    pub fn save_npy(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for t in &self.tensors {
            crate::npy::write_f32(dir.join(format!("{}.npy", t.output)), &t.shape, &t.data)?;
        }
        Ok(())
    }

    /// Reads tensors saved by [`State::save_npy`], using `like` for names and shapes.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Npy`] if a file is missing or malformed,
    /// [`Error::Shape`] if a shape differs from `like`'s.
    pub fn load_npy(dir: &Path, like: &State) -> Result<State> {
        let mut tensors = Vec::with_capacity(like.tensors.len());
        for t in &like.tensors {
            let a = crate::npy::read_f32(dir.join(format!("{}.npy", t.output)))?;
            if a.shape != t.shape {
                return Err(Error::Shape(format!(
                    "state {} in {} is {:?}, the model needs {:?}",
                    t.output,
                    dir.display(),
                    a.shape,
                    t.shape
                )));
            }
            tensors.push(StateTensor {
                data: a.data,
                ..t.clone()
            });
        }
        Ok(State { tensors })
    }
}

/// One stream through a recurrent model: it owns the stream's state.
pub trait Stream: Send {
    /// Values per input frame.
    fn input_size(&self) -> usize;
    /// Values per output frame.
    fn output_size(&self) -> usize;
    /// Processes `frames` (`T * input_size` values, `T >= 0`) carrying the
    /// state, and appends `T * output_size` values to `out`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `frames` is not a whole number of frames;
    /// [`Error::Ort`] if ONNX Runtime fails.
    fn process(&mut self, frames: &[f32], out: &mut Vec<f32>) -> Result<()>;
    /// Returns to the initial state. Call it at every discontinuity.
    fn reset(&mut self);
    /// A copy of the current state.
    fn snapshot(&self) -> State;
    /// Replaces the state with `state` (from [`Stream::snapshot`] on the same model).
    ///
    /// # Errors
    /// [`Error::Shape`] if the state does not fit this model.
    fn restore(&mut self, state: &State) -> Result<()>;
    /// The native stream behind this one, if it is one: a server steps
    /// those of many streams together ([`NativeBatch::step_first`]).
    fn as_native(&mut self) -> Option<&mut NativeStream> {
        None
    }
    /// The ONNX Runtime stream behind this one, if it is one (a server runs
    /// those on one shared session, [`OrtStream::process_with`]).
    fn as_ort(&mut self) -> Option<&mut OrtStream> {
        None
    }
}

/// A loaded recurrent model, shared by streams.
#[derive(Debug, Clone)]
pub enum SequenceModel {
    /// The native backend.
    Native(Arc<NativeModel>),
    /// ONNX Runtime.
    Ort(Arc<OrtModel>),
    /// Keyword templates (no network).
    Templates(Arc<TemplateModel>),
}

impl SequenceModel {
    /// Loads `onnx` with `backend`. For the native backend, `spec`'s state
    /// pairs (if any) must match what the importer finds; the ort backend
    /// needs them to carry state.
    ///
    /// # Errors
    /// [`Error::UnsupportedModel`] when the native backend cannot run the graph,
    /// [`Error::InvalidModel`] / [`Error::Io`] for unreadable files,
    /// [`Error::RuntimeMissing`] when ONNX Runtime is needed but absent.
    pub fn load(onnx: &Path, backend: Backend, spec: &OrtSpec) -> Result<SequenceModel> {
        match backend {
            Backend::Native => {
                let m = import_onnx(onnx)?;
                Ok(SequenceModel::Native(Arc::new(m)))
            }
            Backend::Ort => Ok(SequenceModel::Ort(Arc::new(OrtModel::load(
                onnx,
                spec.clone(),
            )?))),
        }
    }

    /// A new stream in the initial state. For ort this builds a session:
    /// make one stream per worker and reuse it (with `reset`) across inputs.
    ///
    /// # Errors
    /// As [`OrtModel::stream`] for the ort backend; never for native.
    pub fn stream(&self) -> Result<Box<dyn Stream>> {
        Ok(match self {
            SequenceModel::Native(m) => Box::new(m.stream()),
            SequenceModel::Ort(m) => Box::new(m.stream()?),
            SequenceModel::Templates(m) => Box::new(m.stream()),
        })
    }

    /// As [`SequenceModel::stream`], but an ONNX Runtime stream gets no
    /// session of its own ([`OrtModel::shared_stream`]): for a server that
    /// lends one to all its streams.
    pub fn shared_stream(&self) -> Box<dyn Stream> {
        match self {
            SequenceModel::Native(m) => Box::new(m.stream()),
            SequenceModel::Ort(m) => Box::new(m.shared_stream()),
            SequenceModel::Templates(m) => Box::new(m.stream()),
        }
    }

    /// Values per input frame.
    pub fn input_size(&self) -> usize {
        match self {
            SequenceModel::Native(m) => m.input_size(),
            SequenceModel::Ort(m) => m.input_size(),
            SequenceModel::Templates(m) => m.input_size(),
        }
    }

    /// Whether the model gives one output row per call (per chunk), not
    /// per frame (see [`OrtModel::per_call_output`]).
    pub fn per_call_output(&self) -> bool {
        matches!(self, SequenceModel::Ort(m) if m.per_call_output())
    }

    /// Values per output frame.
    pub fn output_size(&self) -> usize {
        match self {
            SequenceModel::Native(m) => m.output_size(),
            SequenceModel::Ort(m) => m.output_size(),
            SequenceModel::Templates(m) => m.output_size(),
        }
    }
}
