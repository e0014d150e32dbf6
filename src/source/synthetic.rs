//! A deterministic signal generator: the null device of seqrec, so pipeline
//! tests run without files or hardware.

use super::AudioSource;
use crate::Result;

/// One segment of a synthetic signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Segment {
    /// Digital silence for this many seconds.
    Silence(f64),
    /// A sine of `hz` at amplitude `amp` for `secs` seconds.
    Tone {
        /// Frequency in Hz.
        hz: f64,
        /// Peak amplitude (1.0 = full scale).
        amp: f32,
        /// Duration in seconds.
        secs: f64,
    },
}

/// Plays a list of [`Segment`]s in chunks of `chunk` samples, then ends.
#[derive(Debug, Clone)]
pub struct Synthetic {
    rate: u32,
    chunk: usize,
    samples: Vec<f32>,
    pos: usize,
}

impl Synthetic {
    /// Renders `segments` at `rate` Hz, to be read `chunk` samples at a time.
    pub fn new(rate: u32, chunk: usize, segments: &[Segment]) -> Self {
        let mut samples = Vec::new();
        for s in segments {
            match *s {
                Segment::Silence(secs) => {
                    samples.resize(samples.len() + (secs * rate as f64).round() as usize, 0.0)
                }
                Segment::Tone { hz, amp, secs } => {
                    let n = (secs * rate as f64).round() as usize;
                    let w = 2.0 * std::f64::consts::PI * hz / rate as f64;
                    samples.extend((0..n).map(|i| amp * (w * i as f64).sin() as f32));
                }
            }
        }
        Synthetic {
            rate,
            chunk: chunk.max(1),
            samples,
            pos: 0,
        }
    }

    /// All samples, for comparisons.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }
}

impl AudioSource for Synthetic {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        let n = self.chunk.min(self.samples.len() - self.pos);
        out.extend_from_slice(&self.samples[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
