//! Live capture from an audio input device (cpal), delivered as mono `f32` at the rate the models
//! expect.
//!
//! [`Microphone::open`] picks a device ([`MicOptions::device`]: a name, part of a name, or an
//! index from [`list_input_devices`]; the system default otherwise), opens an input stream in the
//! device's own format, and starts it. [`Microphone::read`] then hands out the captured audio,
//! resampled to [`MicOptions::target_rate`], as it arrives.
//!
//! # Threads and queues
//!
//! ```text
//!  audio thread (cpal callback)                         reading thread (Microphone::read)
//!  ───────────────────────────                          ─────────────────────────────────
//!  any sample format, any channel count                 recv with a deadline
//!  → mono f32 (average of the channels)                 → resample to target_rate (rubato FFT)
//!  → fixed-size chunks (chunk_ms, native rate)   ──▶    → append to the caller's buffer
//!    try_send into a bounded queue                      → give the chunk's buffer back
//!    (full: drop the oldest chunk, count it)     ◀──    to the pool
//!                        buffers recycled through a second queue (the pool)
//! ```
//!
//! The callback runs on the audio system's real-time thread, where waiting or allocating risks
//! glitches in the capture itself, so it only converts samples and hands off buffers:
//!
//! * **No allocation.** All chunk buffers (`queue_chunks + 2` of them, `chunk_ms` of native-rate
//!   mono audio each) are allocated by [`Microphone::open`]. They circulate between two bounded
//!   [`crossbeam_channel`] queues: the *data* queue (callback → reader) and the *pool* (reader →
//!   callback). The callback takes an empty buffer from the pool, fills it, and moves it into the
//!   data queue; the reader copies it out and returns it to the pool. The queues' slots are
//!   preallocated arrays, and moving a `Vec` through them moves three words, never its contents.
//!   Since there are never more buffers than the pool can hold, returning one never fails, so no
//!   buffer is ever freed on the audio thread.
//! * **No blocking.** The callback uses only `try_send`/`try_recv`, which never wait for the
//!   reader. (When the reader is asleep in [`Microphone::read`], waking it takes crossbeam's
//!   internal waker lock for a few instructions and a futex wake; the reader never holds that lock
//!   while doing work.)
//! * **Drop-oldest.** Live audio that cannot be processed in time is worth less than the audio
//!   that follows it. When the data queue is full (the reader is `queue_chunks` chunks behind), the
//!   callback itself pops the *oldest* queued chunk (it holds a clone of the queue's receiver),
//!   counts it in [`Microphone::dropped_chunks`], reuses its buffer, and queues the new chunk. The
//!   reader therefore always sees the most recent `queue_chunks` chunks, in order; the audio
//!   around a drop is concatenated (a gap the caller can detect through the counter, and treat as
//!   a discontinuity: reset stateful stages).
//!
//! Device errors reported by cpal's error callback travel through a third small queue and come
//! out of [`Microphone::read`] as [`Error::Device`], after the audio captured before them. Buffer
//! overruns that the audio system recovers from by itself (xruns) are only counted
//! ([`Microphone::overruns`]). Not every failure is reported, though: when the PulseAudio server
//! behind ALSA dies, the stream simply stops calling back. A live device always delivers
//! samples, even of silence, so a stream that delivers nothing for
//! [`MicOptions::stall_timeout`] is declared dead, with an [`Error::Device`] too.
//!
//! # Timing
//!
//! Each chunk carries the capture time of its first sample, so
//! [`Microphone::last_chunk_captured_at`] gives, for the audio just returned, the instant it
//! entered the device: the basis of end-to-end latency measurements. Resampling is time-aligned
//! (the resampler's delay is removed), so output sample `j` is the input at time
//! `j / target_rate` from the start of the stream.
//!
//! Capture times come from a sample clock, `anchor + frame / native_rate`, not from the latency
//! the audio system reports per buffer: PulseAudio's ALSA plugin was seen reporting 0.3 s of
//! latency for its first buffers when there was none (the clip played into the virtual microphone
//! came out 50 ms after the first buffer, not 300 ms), then shrinking it over half a second. What
//! cannot be wrong is that a sample was captured before the callback that delivers it runs, so
//! each callback gives an upper bound for the anchor, `now - (frames up to the end of this
//! buffer) / native_rate`, and the anchor is the smallest such bound over the last
//! [`CLOCK_WINDOW`]: the callback that was least delayed. A late callback (a scheduling hiccup)
//! does not move it; samples lost inside the audio system (an overrun) or clock drift move it
//! after at most one window. The times are thus at most a few milliseconds late: they leave out
//! the converter's own latency and the time between the buffer filling and the callback waking.
//!
//! # Hardware-free parts
//!
//! The callback's work and the reading side are plain types, [`capture_queue`] →
//! ([`CaptureWriter`], [`CaptureReader`]), so they are tested without a device; a
//! [`Microphone`] is a [`CaptureReader`] fed by a cpal stream.
//!
//! # A virtual microphone
//!
//! Machines without a sound card (CI) can capture from a PulseAudio null sink:
//! `scripts/vmic.sh start` runs a private daemon and writes the environment to `.vmic/env`;
//! `scripts/vmic.sh play FILE` plays a file into it in real time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    FromSample, SampleFormat, SizedSample, SupportedBufferSize, SupportedStreamConfigRange,
};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use rubato::{FftFixedIn, Resampler};

use crate::error::{Error, Result};
use crate::source::AudioSource;
use crate::source::file::MAX_SAMPLE_RATE;
use crate::source::resample;

mod devices;
mod queue;

pub use devices::{DeviceInfo, list_input_devices};
use devices::{choose_config, describe_ranges, device_name, find_device};
use queue::check_rate;
pub use queue::{
    CLOCK_WINDOW, CaptureReader, CaptureWriter, ErrorReporter, QueueConfig, capture_queue,
};

/// cpal's stream set-up timeout (for ALSA, also how often a silent stream checks that its device
/// is still connected).
const STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for [`Microphone::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicOptions {
    /// Which input device: an index from [`list_input_devices`], a device name, or a
    /// case-insensitive part of a name or description that matches exactly one device.
    /// Default `None`: the system's default input device.
    pub device: Option<String>,
    /// Sample rate of the audio [`Microphone::read`] returns, Hz. Default 16000.
    pub target_rate: u32,
    /// Length of the chunks the audio callback hands over, in milliseconds of audio (1..=1000).
    /// Shorter chunks lower latency; 10-20 ms suits speech. Default 10.
    pub chunk_ms: u32,
    /// Capacity of the queue between the audio callback and the reader, in chunks (1..=100000).
    /// When the reader falls this far behind, the oldest chunks are dropped and counted.
    /// Default 100 (one second of 10 ms chunks).
    pub queue_chunks: usize,
    /// Frames per device buffer requested from the audio system (clamped to what the device
    /// supports), or `None` for the system's default. Default `Some(1024)`: with PulseAudio's
    /// ALSA plugin the default buffer delivered nothing for the first second or more.
    pub buffer_frames: Option<u32>,
    /// Rate to open the device at, Hz. Default `None`: `target_rate` when the device offers it
    /// (no resampling needed), else 48000, else 44100, else the device's default rate.
    pub native_rate: Option<u32>,
    /// A device that delivers no audio for this long (from the start of the stream until the
    /// first audio) counts as gone: [`Microphone::read`] returns an error. Needed because a
    /// sound server that dies (PulseAudio behind ALSA) is not reported as an error: the stream
    /// just goes silent, without even silence. `None`: wait forever. Default 5 s (the first audio
    /// was seen to take up to 2.4 s).
    pub stall_timeout: Option<Duration>,
}

impl Default for MicOptions {
    fn default() -> Self {
        MicOptions {
            device: None,
            target_rate: 16_000,
            chunk_ms: 10,
            queue_chunks: 100,
            buffer_frames: Some(1024),
            native_rate: None,
            stall_timeout: Some(Duration::from_secs(5)),
        }
    }
}

impl MicOptions {
    /// Checks every setting; errors name the setting.
    fn validate(&self) -> Result<()> {
        check_rate("target_rate", self.target_rate)?;
        if let Some(rate) = self.native_rate {
            check_rate("native_rate", rate)?;
        }
        if !(1..=1000).contains(&self.chunk_ms) {
            return Err(Error::config(
                "chunk_ms",
                format!("{} ms is out of range (1..=1000 ms)", self.chunk_ms),
            ));
        }
        if !(1..=100_000).contains(&self.queue_chunks) {
            return Err(Error::config(
                "queue_chunks",
                format!("{} is out of range (1..=100000)", self.queue_chunks),
            ));
        }
        if self.stall_timeout == Some(Duration::ZERO) {
            return Err(Error::config(
                "stall_timeout",
                "0 s: give a positive duration, or none to wait forever",
            ));
        }
        if self.buffer_frames == Some(0) {
            return Err(Error::config(
                "buffer_frames",
                "0 frames: give a positive size, or none for the system default",
            ));
        }
        Ok(())
    }
}

/// A running capture: chunks of mono `f32` at the target rate.
///
/// Capture starts in [`open`](Microphone::open) and stops when the `Microphone` is dropped.
/// Audio accumulates in the queue between calls to [`read`](Microphone::read) (up to
/// [`MicOptions::queue_chunks`] chunks, then the oldest is dropped), so read regularly.
///
/// A `Microphone` can be moved to the thread that reads it.
pub struct Microphone {
    reader: CaptureReader,
    device_name: String,
    target_rate: u32,
    native_rate: u32,
    native_channels: usize,
    sample_format: SampleFormat,
    buffer_size: cpal::BufferSize,
    stop: Arc<AtomicBool>,
    /// Dropping the stream stops the capture (`None` only while dropping).
    stream: Option<cpal::Stream>,
}

impl Drop for Microphone {
    /// Stops the capture. A stream whose device failed is released on a background thread:
    /// when a PulseAudio server dies, the ALSA plugin's threads deadlock, and releasing the
    /// stream would block forever (seen with alsa-plugins 1.2.7 and PulseAudio 16).
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.reader.has_failed() {
            // If the thread cannot be started, the closure (and the stream) is dropped here.
            let _ = std::thread::Builder::new()
                .name("seqrec-mic-release".into())
                .spawn(move || drop(stream));
        }
    }
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microphone")
            .field("device", &self.device_name)
            .field("native_rate", &self.native_rate)
            .field("native_channels", &self.native_channels)
            .field("sample_format", &self.sample_format)
            .field("buffer_size", &self.buffer_size)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl Microphone {
    /// Finds the device, opens an input stream in its own format (see
    /// [`MicOptions::native_rate`] for the rate chosen; the channel count is the device's default,
    /// the sample format the best one offered: f32, else i16, …) and starts capturing.
    ///
    /// The first audio may take a while to arrive (0.4-2.4 s was seen with PulseAudio): wait for
    /// the first non-empty [`read`](Microphone::read) before relying on the stream.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] for a setting out of range (named);
    /// * [`Error::Device`] if the device is not found (the message lists the available input
    ///   devices), a name matches several devices, it offers no usable configuration (e.g. not
    ///   the requested `native_rate`), or the stream cannot be built or started.
    pub fn open(opts: &MicOptions) -> Result<Microphone> {
        opts.validate()?;
        let host = cpal::default_host();
        let device = find_device(&host, opts.device.as_deref())?;
        let name = device_name(&device);
        let dev_err = |reason: String| Error::Device {
            device: name.clone(),
            reason,
        };

        let ranges: Vec<SupportedStreamConfigRange> = device
            .supported_input_configs()
            .map_err(|e| dev_err(format!("cannot query its input configurations: {e}")))?
            .collect();
        let default_channels = device.default_input_config().ok().map(|c| c.channels());
        let (range, rate) = choose_config(&ranges, default_channels, opts).map_err(|why| {
            dev_err(format!(
                "{why}; it supports: {}",
                describe_ranges(&ranges).join("; ")
            ))
        })?;
        let buffer_size = match opts.buffer_frames {
            None => cpal::BufferSize::Default,
            Some(n) => cpal::BufferSize::Fixed(match range.buffer_size() {
                SupportedBufferSize::Range { min, max } if min <= max => n.clamp(*min, *max),
                _ => n,
            }),
        };
        let config = cpal::StreamConfig {
            channels: range.channels(),
            sample_rate: rate,
            buffer_size,
        };
        let channels = usize::from(config.channels);
        let chunk_frames = (rate as usize * opts.chunk_ms as usize / 1000).max(1);
        let (writer, reader) = capture_queue(&QueueConfig {
            name: name.clone(),
            channels,
            native_rate: rate,
            target_rate: opts.target_rate,
            chunk_frames,
            queue_chunks: opts.queue_chunks,
            stall_timeout: opts.stall_timeout,
        })?;
        let sample_format = range.sample_format();
        let stream = build_stream(&device, &config, sample_format, writer).map_err(|e| {
            dev_err(format!(
                "cannot open an input stream ({channels} ch, {rate} Hz, {sample_format}, buffer {}): {e}",
                match buffer_size {
                    cpal::BufferSize::Fixed(n) => format!("{n} frames"),
                    cpal::BufferSize::Default => "default".to_string(),
                }
            ))
        })?;
        stream
            .play()
            .map_err(|e| dev_err(format!("cannot start capturing: {e}")))?;
        Ok(Microphone {
            reader,
            device_name: name,
            target_rate: opts.target_rate,
            native_rate: rate,
            native_channels: channels,
            sample_format,
            buffer_size,
            stop: Arc::new(AtomicBool::new(false)),
            stream: Some(stream),
        })
    }

    /// The device's name (as in [`DeviceInfo::name`]).
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The rate of the audio [`read`](Microphone::read) returns, Hz.
    pub fn target_rate(&self) -> u32 {
        self.target_rate
    }

    /// The rate the device delivers, Hz (before resampling to the target rate).
    pub fn native_rate(&self) -> u32 {
        self.native_rate
    }

    /// The number of channels the device delivers (averaged into mono).
    pub fn native_channels(&self) -> usize {
        self.native_channels
    }

    /// The sample format the device delivers (converted to `f32`).
    pub fn sample_format(&self) -> SampleFormat {
        self.sample_format
    }

    /// Blocks up to `timeout` for the next audio: mono `f32` at the target rate, already
    /// resampled, appended to `out`. Returns the number of samples appended; `Ok(0)` on timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the device failed (unplugged, sound server gone, …): the error the
    /// audio system reported, after all the audio captured before it has been returned. The
    /// capture is over then; every later call returns the same error. Reopen the device to go on.
    pub fn read(&mut self, out: &mut Vec<f32>, timeout: Duration) -> Result<usize> {
        self.reader.read(out, timeout)
    }

    /// Chunks dropped since [`open`](Microphone::open) because the reader was too slow (the
    /// oldest queued chunk is dropped each time; see the [module docs](self)).
    pub fn dropped_chunks(&self) -> u64 {
        self.reader.dropped_chunks()
    }

    /// Buffer overruns (xruns) the audio system reported and recovered from since
    /// [`open`](Microphone::open): audio lost before it reached seqrec.
    pub fn overruns(&self) -> u64 {
        self.reader.overruns()
    }

    /// Capture time of the first sample of the audio most recently returned by
    /// [`read`](Microphone::read) (when it entered the device), for end-to-end latency
    /// measurements; `None` before the first audio.
    pub fn last_chunk_captured_at(&self) -> Option<Instant> {
        self.reader.last_chunk_captured_at()
    }

    /// A flag that ends the stream as an [`AudioSource`]: once it is set (from any thread, e.g.
    /// a Ctrl-C handler), [`AudioSource::read`] returns `Ok(0)` within [`STOP_POLL`].
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }
}

/// How often [`AudioSource::read`] on a [`Microphone`] checks its [stop
/// flag](Microphone::stop_handle).
pub const STOP_POLL: Duration = Duration::from_millis(100);

impl AudioSource for Microphone {
    fn sample_rate(&self) -> u32 {
        self.target_rate
    }

    /// Blocks until audio arrives (returns its length) or the [stop
    /// flag](Microphone::stop_handle) is set (returns `Ok(0)`).
    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(0);
            }
            let n = Microphone::read(self, out, STOP_POLL)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }

    fn dropped_chunks(&self) -> u64 {
        Microphone::dropped_chunks(self)
    }
}

/// Builds the input stream for `format`, with the writer in the data callback.
fn build_stream(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    writer: CaptureWriter,
) -> std::result::Result<cpal::Stream, String> {
    let reporter = writer.error_reporter();
    macro_rules! build {
        ($t:ty) => {
            build_typed::<$t>(device, config, writer, reporter)
        };
    }
    match format {
        SampleFormat::I8 => build!(i8),
        SampleFormat::I16 => build!(i16),
        SampleFormat::I24 => build!(cpal::I24),
        SampleFormat::I32 => build!(i32),
        SampleFormat::I64 => build!(i64),
        SampleFormat::U8 => build!(u8),
        SampleFormat::U16 => build!(u16),
        SampleFormat::U24 => build!(cpal::U24),
        SampleFormat::U32 => build!(u32),
        SampleFormat::U64 => build!(u64),
        SampleFormat::F32 => build!(f32),
        SampleFormat::F64 => build!(f64),
        other => Err(format!("sample format {other} is not supported")),
    }
}

fn build_typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut writer: CaptureWriter,
    reporter: ErrorReporter,
) -> std::result::Result<cpal::Stream, String>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                // cpal's own timestamps are not used (see "Timing" in the module docs).
                writer.write(data, Instant::now());
            },
            move |err| reporter.report(&err),
            Some(STREAM_TIMEOUT),
        )
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::devices::compact_ranges;
    use super::*;

    #[test]
    fn microphone_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Microphone>();
        assert_send::<CaptureReader>();
        assert_send::<CaptureWriter>();
    }

    #[test]
    fn compact_ranges_merges_runs() {
        assert_eq!(compact_ranges(&[1, 2, 3, 6, 8, 9]), "1-3, 6, 8-9");
        assert_eq!(compact_ranges(&[2]), "2");
    }

    fn range(ch: u16, min: u32, max: u32, f: SampleFormat) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(ch, min, max, SupportedBufferSize::Unknown, f)
    }

    #[test]
    fn choose_config_prefers_target_rate_default_channels_and_f32() {
        let ranges = [
            range(1, 8000, 48000, SampleFormat::I16),
            range(2, 8000, 48000, SampleFormat::I16),
            range(2, 8000, 48000, SampleFormat::F32),
            range(2, 44100, 44100, SampleFormat::F32),
        ];
        let opts = MicOptions::default();
        let (r, rate) = choose_config(&ranges, Some(2), &opts).unwrap();
        assert_eq!(
            (r.channels(), rate, r.sample_format()),
            (2, 16000, SampleFormat::F32)
        );
        // A forced native rate.
        let opts = MicOptions {
            native_rate: Some(44100),
            ..MicOptions::default()
        };
        let (_, rate) = choose_config(&ranges, Some(2), &opts).unwrap();
        assert_eq!(rate, 44100);
        let opts = MicOptions {
            native_rate: Some(96000),
            ..MicOptions::default()
        };
        assert!(choose_config(&ranges, Some(2), &opts).is_err());
        // A device without the target rate: 48 kHz preferred, then 44.1 kHz, then its maximum.
        let ranges = [range(2, 44100, 48000, SampleFormat::I16)];
        let (_, rate) = choose_config(&ranges, None, &MicOptions::default()).unwrap();
        assert_eq!(rate, 48000);
        let ranges = [range(2, 22050, 22050, SampleFormat::I16)];
        let (_, rate) = choose_config(&ranges, None, &MicOptions::default()).unwrap();
        assert_eq!(rate, 22050);
    }
}
