//! Sources: where samples come from (files, microphone, synthetic).
//!
//! Every source yields mono f32 samples at the rate the bundle asks for, in
//! chunks, through [`AudioSource`], so the pipeline treats a file, a live
//! microphone and a test generator alike.

pub mod file;
pub mod mic;
pub mod pcm;
mod resample;
pub mod synthetic;
pub mod video;

pub use file::{AudioFile, read_all};
pub use synthetic::Synthetic;
pub use video::{FfmpegVideo, Frame, ImageFolder, VideoInfo, VideoSource};

use crate::Result;

/// A stream of mono f32 samples at a fixed rate.
pub trait AudioSource: Send {
    /// Samples per second of what [`AudioSource::read`] yields.
    fn sample_rate(&self) -> u32;
    /// Appends the next samples to `out` and returns how many. `Ok(0)` means
    /// the end of the stream for finite sources; live sources return `Ok(0)`
    /// only when they were asked to stop.
    ///
    /// # Errors
    /// Decoding errors for files, device errors for live input.
    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize>;
    /// Chunks lost because the consumer fell behind (live sources only).
    fn dropped_chunks(&self) -> u64 {
        0
    }
}

impl AudioSource for AudioFile {
    fn sample_rate(&self) -> u32 {
        self.target_rate()
    }

    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        self.read_chunk(out)
    }
}
