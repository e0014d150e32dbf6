//! seqrec: real-time sequence recognition on audio.
//!
//! Audio flows one way through stages, each a module that never imports a
//! later one; only [`pipeline`] knows them all:
//!
//! ```text
//!  source ──chunks──▶ features ──frames──▶ sequence ──posteriors──▶ decision ──events──▶ sink
//! ```
//!
//! * [`source`]: files (decoded, downmixed, resampled), the microphone, a
//!   synthetic generator — all behind [`source::AudioSource`];
//! * [`features`]: the streaming log-mel / MFCC front end (librosa's definitions);
//! * [`sequence`]: recurrent models (RNN, LSTM, GRU) carrying their state
//!   across chunks, on seqrec's own kernels or ONNX Runtime;
//! * [`decision`]: per-frame scores to labelled events;
//! * [`sink`]: JSON Lines / CSV records and PNG plots.
//!
//! A model is loaded once and shared; each stream owns its state, and every
//! stateful stage has `reset()` for discontinuities (a new file, a capture gap).
//!
//! # Recognizing a file
//!
//! ```
//! use seqrec::bundle::Bundle;
//! use seqrec::pipeline::{Recognizer, process_source};
//! use seqrec::source::AudioFile;
//!
//! # fn main() -> seqrec::Result<()> {
//! let root = env!("CARGO_MANIFEST_DIR");
//! // Shared by every stream: features plan, recurrent model, decision settings.
//! let rec = Recognizer::new(Bundle::load(format!("{root}/fixtures/bundles/tone"))?)?;
//! // One stream's state in every stage.
//! let mut stream = rec.stream()?;
//! let mut clip = AudioFile::open(format!("{root}/fixtures/clips/tone/beeps_whistle.wav"), rec.sample_rate())?;
//! let result = process_source(&mut stream, &mut clip, false, false)?;
//! for e in &result.output.events {
//!     println!("{} from {:.2} s to {:.2} s ({:.2})", e.label, e.start_s, e.end_s, e.score);
//! }
//! assert_eq!(result.output.events.len(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! # The stages by hand
//!
//! Pushing samples in any chunk sizes gives the same frames, and a native
//! recurrent stream the same outputs, bit for bit, as one call on everything:
//!
//! ```
//! use std::sync::Arc;
//! use seqrec::features::{FeatureConfig, FrontEnd};
//! use seqrec::sequence::{Stream, import_onnx};
//!
//! # fn main() -> seqrec::Result<()> {
//! let root = env!("CARGO_MANIFEST_DIR");
//! let samples: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.06).sin() * 0.3).collect();
//! let mut front = FrontEnd::new(&FeatureConfig::speech_16k())?; // 40 log-mels every 10 ms
//! let mut frames = Vec::new();
//! for chunk in samples.chunks(333) {
//!     front.push(chunk, &mut frames);
//! }
//! front.finish(&mut frames);
//!
//! // An LSTM(40 -> 128, 2 layers) + dense 12 + softmax, exported by torch.onnx.export.
//! let model = Arc::new(import_onnx(format!("{root}/fixtures/rnn/lstm_40_128_l2_head12.onnx").as_ref())?);
//! let mut stream = model.stream();
//! let mut scores = Vec::new();
//! for chunk in frames.chunks(40 * 7) {
//!     stream.process(chunk, &mut scores)?; // state carried between calls
//! }
//! assert_eq!(scores.len(), frames.len() / 40 * 12);
//! stream.reset(); // before the next, unrelated input
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod bundle;
pub mod decision;
pub mod embed;
pub mod enroll;
pub mod error;
pub mod features;
pub mod npy;
pub mod onnx;
pub mod pipeline;
pub mod runtime;
pub mod sequence;
pub mod serve;
pub mod simd;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
