//! seqrec: real-time sequence recognition on audio and video.
//!
//! Input flows one way through stages, each a module that never imports a
//! later one; only [`pipeline`] knows them all:
//!
//! ```text
//!  source ──chunks──▶ features ──frames──▶ [embed] ──steps──▶ sequence ──posteriors──▶ decision ──events──▶ sink
//!  audio: file, mic   log-mel, MFCC,       a frozen CNN in    RNN/LSTM/GRU with
//!  video: file,       dB (audio);          ONNX Runtime       state carried
//!  camera, FFmpeg     resize, crop,        (speech_embedding, across chunks
//!                     normalise (video)    EfficientNet, MoveNet)
//! ```
//!
//! * [`source`]: audio files (decoded, downmixed, resampled), the
//!   microphone, a synthetic generator ([`source::AudioSource`]); video
//!   files, image folders, cameras, live FFmpeg inputs
//!   ([`source::video::VideoSource`]);
//! * [`features`]: the streaming log-mel / MFCC front end (librosa's
//!   definitions) and the video preprocessing (and the pose stage);
//! * [`embed`]: an optional frozen CNN over windows of frames, in ONNX
//!   Runtime (required for video bundles);
//! * [`sequence`]: recurrent models (RNN, LSTM, GRU) carrying their state
//!   across chunks, on seqrec's own kernels or ONNX Runtime, and keyword
//!   templates;
//! * [`decision`]: per-step scores to labelled events;
//! * [`sink`]: JSON Lines / CSV records and PNG plots;
//! * [`serve`]: many streams in one process over WebSocket, their model
//!   calls batched together, their state movable ([`pipeline::StreamState`]);
//! * [`cluster`]: many machines, on NATS JetStream: batch jobs that survive a
//!   worker's death, live streams whose state moves to another worker.
//!
//! A model is loaded once and shared ([`pipeline::Recognizer`]); each stream
//! owns its state ([`pipeline::StreamProcessor`]), and every stateful stage
//! has `reset()` for discontinuities (a new file, a capture gap).
//!
//! # Recognizing an audio file
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
//! # Keywords through an embedder (audio + CNN + GRU)
//!
//! `models/kws` runs Google's speech_embedding CNN (ONNX Runtime) on windows
//! of 76 mel frames every 80 ms, and a GRU head on the embeddings. The
//! stream can be moved: its whole state is a [`pipeline::StreamState`].
//!
//! ```
//! use seqrec::bundle::Bundle;
//! use seqrec::pipeline::{Output, Recognizer};
//! use seqrec::source::{AudioFile, AudioSource};
//!
//! # fn main() -> seqrec::Result<()> {
//! let root = env!("CARGO_MANIFEST_DIR");
//! let rec = Recognizer::new(Bundle::load(format!("{root}/models/kws"))?)?;
//! let mut stream = rec.live_stream()?; // every window runs as soon as it is complete
//! let mut clip = AudioFile::open(format!("{root}/fixtures/clips/kws/live_yes_down_right_go.wav"), rec.sample_rate())?;
//! let (mut buf, mut out) = (Vec::new(), Output::default());
//! while clip.read(&mut buf)? > 0 {
//!     stream.push(&buf, &mut out)?; // chunks of any size
//!     buf.clear();
//! }
//! let state = stream.snapshot()?; // front end, CNN window, GRU state, decision state
//! let mut moved = rec.live_stream()?;
//! moved.restore(&state)?; // continues exactly where `stream` is
//! moved.finish(&mut out)?;
//! for e in &out.events {
//!     println!("{} at {:.2} s", e.label, e.start_s);
//! }
//! assert!(out.events.iter().any(|e| e.label == "down"));
//! # Ok(())
//! # }
//! ```
//!
//! # Actions in a video (frames + CNN + recurrent head)
//!
//! ```
//! use seqrec::bundle::Bundle;
//! use seqrec::pipeline::{Output, Recognizer, process_video};
//!
//! # fn main() -> seqrec::Result<()> {
//! let root = env!("CARGO_MANIFEST_DIR");
//! let rec = Recognizer::new(Bundle::load(format!("{root}/models/action"))?)?; // EfficientNet-Lite0 + LSTM
//! let mut stream = rec.stream()?;
//! // any file the system's FFmpeg decodes, or a folder of images
//! let path = format!("{root}/fixtures/clips/action/rocket_motions.mp4");
//! let mut video = seqrec::source::video::open(path.as_ref(), None)?;
//! let result = process_video(&mut stream, &mut video, Output::default())?;
//! for e in &result.output.events {
//!     println!("{} from {:.1} s to {:.1} s", e.label, e.start_s, e.end_s);
//! }
//! assert!(!result.output.events.is_empty());
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
pub mod cluster;
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
