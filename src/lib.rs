//! seqrec: real-time sequence recognition on audio and video.
#![warn(missing_docs)]

pub mod bundle;
pub mod decision;
pub mod error;
pub mod features;
pub mod npy;
pub mod onnx;
pub mod pipeline;
pub mod runtime;
pub mod sequence;
pub mod simd;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
