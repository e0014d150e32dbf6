//! Sources: where samples come from (files, microphone, synthetic).

pub mod file;

pub use file::{AudioFile, read_all};
