//! seqrec: real-time sequence recognition on audio and video.
#![warn(missing_docs)]

pub mod error;
pub mod features;
pub mod npy;
pub mod onnx;
pub mod source;

pub use error::{Error, Result};
