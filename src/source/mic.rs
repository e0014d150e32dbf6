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

/// Resampling is done in FFT units of at least this many frames on both sides.
///
/// Smaller than for files (1024), because each unit is latency: at 48 → 16 kHz a unit is 768
/// input frames (16 ms) and the resampler's delay half an output unit (8 ms). The anti-aliasing
/// filter is still sharp: measured (`tests/mic.rs`), a 1 kHz tone comes out within -135 dB
/// (48 → 16 kHz) and -121 dB (44.1 → 16 kHz) of the ideal tone, and at 48 → 16 kHz tones of
/// 8.6 kHz and up are attenuated by more than 140 dB.
const MIN_FFT_UNIT: usize = 256;

/// Largest FFT unit (frames, either side) accepted; rate pairs needing more are refused.
const MAX_FFT_UNIT: usize = 1 << 16;

/// Native rates tried, in order, when the device cannot deliver the target rate itself.
const PREFERRED_RATES: [u32; 2] = [48_000, 44_100];

/// Window of the sample clock's anchor (see "Timing" in the [module docs](self)): the anchor is
/// the least-delayed callback's over this long (the window slides in eighths).
pub const CLOCK_WINDOW: Duration = Duration::from_secs(2);

/// Steps in which the sample clock's window slides.
const CLOCK_BUCKETS: usize = 8;

/// cpal's stream set-up timeout (for ALSA, also how often a silent stream checks that its device
/// is still connected).
const STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// An audio input device, as listed by [`list_input_devices`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Position in the list; `--device INDEX` (or [`MicOptions::device`]) selects it.
    pub index: usize,
    /// The device's name as the audio system knows it (for ALSA, the PCM name: `default`,
    /// `pulse`, `hw:CARD=0,DEV=0`, …). Stable across runs; `--device NAME` selects it.
    pub name: String,
    /// A human description (e.g. "PulseAudio Sound Server"), or the name again when there is none.
    pub description: String,
    /// Whether this is the system's default input device (used when no device is given).
    pub is_default: bool,
    /// The configuration the device proposes by default, e.g. `2 ch, 44100 Hz, f32`; `None` when
    /// it cannot be queried.
    pub default_config: Option<String>,
    /// Supported input configurations, human-readable: channel counts, rate range, sample format,
    /// buffer size range, e.g. `1-32 ch, 1-384000 Hz, i16, buffer 1-1048576 frames`. When the
    /// device cannot be opened to query them, one entry `unavailable: REASON`.
    pub configs: Vec<String>,
}

/// Lists the audio input devices of the default host, in the order [`MicOptions::device`]
/// indexes them.
///
/// Querying a device's configurations opens it briefly; devices that are busy or broken are
/// still listed, with a configuration entry saying why they are unavailable. (ALSA may print
/// diagnostics of its own to stderr while probing plugin devices.)
///
/// # Errors
///
/// [`Error::Device`] if the audio system cannot enumerate devices at all.
pub fn list_input_devices() -> Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().map(|d| device_name(&d));
    let devices = input_devices(&host)?;
    Ok(devices
        .iter()
        .enumerate()
        .map(|(index, device)| {
            let name = device_name(device);
            let description = device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_else(|_| name.clone());
            let configs = match device.supported_input_configs() {
                Ok(ranges) => describe_ranges(&ranges.collect::<Vec<_>>()),
                Err(e) => vec![format!("unavailable: {e}")],
            };
            let default_config = device.default_input_config().ok().map(|c| {
                format!(
                    "{} ch, {} Hz, {}",
                    c.channels(),
                    c.sample_rate(),
                    c.sample_format()
                )
            });
            DeviceInfo {
                index,
                is_default: default_name.as_deref() == Some(name.as_str()),
                name,
                description,
                default_config,
                configs,
            }
        })
        .collect())
}

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

/// Shape of a [`capture_queue`]: what the writer receives and what the reader returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Name of the source, used in error messages (the device name).
    pub name: String,
    /// Channels per frame of the interleaved input (averaged into mono).
    pub channels: usize,
    /// Rate of the input, Hz.
    pub native_rate: u32,
    /// Rate of the output of [`CaptureReader::read`], Hz.
    pub target_rate: u32,
    /// Frames (at the native rate) per chunk handed from the writer to the reader.
    pub chunk_frames: usize,
    /// Capacity of the queue, in chunks.
    pub queue_chunks: usize,
    /// How long the reader waits without any call to [`CaptureWriter::write`] (counted from the
    /// queue's creation until the first call) before it declares the source dead; `None`: forever.
    pub stall_timeout: Option<Duration>,
}

/// Creates the lock-free, allocation-free hand-off between an audio callback and a reader:
/// the [`CaptureWriter`] runs in the callback, the [`CaptureReader`] on the reading thread.
/// See the [module docs](self) for how buffers circulate and when chunks are dropped.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if a count or rate is 0 or out of range, or the rates need a
/// resampler FFT larger than 2¹⁶ frames (rates with a tiny common divisor).
pub fn capture_queue(cfg: &QueueConfig) -> Result<(CaptureWriter, CaptureReader)> {
    check_rate("native_rate", cfg.native_rate)?;
    check_rate("target_rate", cfg.target_rate)?;
    if !(1..=64).contains(&cfg.channels) {
        return Err(Error::config(
            "channels",
            format!("{} is out of range (1..=64)", cfg.channels),
        ));
    }
    if !(1..=cfg.native_rate as usize * 10).contains(&cfg.chunk_frames) {
        return Err(Error::config(
            "chunk_frames",
            format!("{} is out of range (1..=10 s of audio)", cfg.chunk_frames),
        ));
    }
    if !(1..=100_000).contains(&cfg.queue_chunks) {
        return Err(Error::config(
            "queue_chunks",
            format!("{} is out of range (1..=100000)", cfg.queue_chunks),
        ));
    }
    let resampler = if cfg.native_rate == cfg.target_rate {
        None
    } else {
        Some(LiveResampler::new(cfg.native_rate, cfg.target_rate)?)
    };

    // One buffer in the callback's hands, one in the reader's, the rest queued: the pool can
    // hold them all, so recycling never fails (and never frees on the audio thread).
    let pool_size = cfg.queue_chunks + 2;
    let (data_tx, data_rx) = crossbeam_channel::bounded::<Chunk>(cfg.queue_chunks);
    let (pool_tx, pool_rx) = crossbeam_channel::bounded::<Vec<f32>>(pool_size);
    for _ in 0..pool_size {
        pool_tx
            .try_send(vec![0.0; cfg.chunk_frames])
            .expect("the pool holds every buffer");
    }
    let (err_tx, err_rx) = crossbeam_channel::bounded::<String>(1);
    let counters = Arc::new(Counters::new());

    let writer = CaptureWriter {
        data_tx,
        oldest_rx: data_rx.clone(),
        pool_tx: pool_tx.clone(),
        pool_rx,
        err_tx,
        counters: counters.clone(),
        channels: cfg.channels,
        native_rate: cfg.native_rate,
        chunk_frames: cfg.chunk_frames,
        current: None,
        filled: 0,
        frames_seen: 0,
        clock: SampleClock::new(cfg.native_rate),
        chunk_captured_at: None,
    };
    let reader = CaptureReader {
        name: cfg.name.clone(),
        data_rx,
        pool_tx,
        err_rx,
        counters,
        native_rate: cfg.native_rate,
        target_rate: cfg.target_rate,
        resampler,
        marks: VecDeque::with_capacity(16),
        frames_in: 0,
        frames_out: 0,
        last_captured_at: None,
        stall_timeout: cfg.stall_timeout,
        failed: None,
    };
    Ok((writer, reader))
}

/// Counters shared by the writer (and its error reporter) and the reader.
#[derive(Debug)]
struct Counters {
    dropped: AtomicU64,
    overruns: AtomicU64,
    /// Set once a fatal error has been reported; later errors are ignored.
    failed: AtomicBool,
    /// When the queue was made: the reference for `last_callback`.
    origin: Instant,
    /// Nanoseconds from `origin` to the last callback, plus one; 0 before the first.
    last_callback: AtomicU64,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            dropped: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            origin: Instant::now(),
            last_callback: AtomicU64::new(0),
        }
    }

    /// Records that a callback ran at `now`.
    fn note_callback(&self, now: Instant) {
        let ns = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX - 1);
        self.last_callback.store(ns + 1, Ordering::Relaxed);
    }

    /// When the last callback ran; `None` before the first.
    fn last_callback(&self) -> Option<Instant> {
        match self.last_callback.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.origin + Duration::from_nanos(ns - 1)),
        }
    }
}

/// A chunk of mono audio at the native rate.
#[derive(Debug)]
struct Chunk {
    /// Exactly `chunk_frames` samples.
    samples: Vec<f32>,
    /// When the first frame was captured.
    captured_at: Instant,
}

/// The producer side of a [`capture_queue`]: what the audio callback runs.
///
/// [`write`](CaptureWriter::write) converts interleaved samples of any format to `f32`,
/// averages each frame's channels, and packs the mono samples into fixed-size chunks that it
/// queues for the reader. It never allocates, frees or waits.
pub struct CaptureWriter {
    data_tx: Sender<Chunk>,
    /// The data queue's receiving end, to drop the oldest chunk when the queue is full.
    oldest_rx: Receiver<Chunk>,
    /// Returns the buffers of dropped chunks to the pool.
    pool_tx: Sender<Vec<f32>>,
    pool_rx: Receiver<Vec<f32>>,
    err_tx: Sender<String>,
    counters: Arc<Counters>,
    channels: usize,
    native_rate: u32,
    chunk_frames: usize,
    /// The buffer being filled (`None` between chunks, or when the pool ran dry).
    current: Option<Vec<f32>>,
    filled: usize,
    /// Frames received since the start (written or skipped).
    frames_seen: u64,
    clock: SampleClock,
    chunk_captured_at: Option<Instant>,
}

impl std::fmt::Debug for CaptureWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("channels", &self.channels)
            .field("native_rate", &self.native_rate)
            .field("chunk_frames", &self.chunk_frames)
            .field("frames_seen", &self.frames_seen)
            .finish_non_exhaustive()
    }
}

impl CaptureWriter {
    /// Takes one callback's worth of interleaved samples (`channels` per frame; a trailing
    /// partial frame is ignored), delivered at `now` (the instant the callback runs; its first
    /// frame follows the last frame of the previous call).
    ///
    /// Integer samples are scaled to `[-1, 1)` (cpal's conversions: `i16` → `x / 32768`, `u16`
    /// → `(x - 32768) / 32768`, …); each frame becomes the average of its channels (a single
    /// channel is copied exactly). Every `chunk_frames` frames a chunk is queued; when the queue is
    /// full, the oldest queued chunk is dropped and counted.
    pub fn write<T>(&mut self, interleaved: &[T], now: Instant)
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let channels = self.channels;
        let frames = interleaved.len() / channels;
        self.counters.note_callback(now);
        self.clock.observe(now, self.frames_seen + frames as u64);
        let mut frame = 0;
        while frame < frames {
            if self.current.is_none() {
                match self.take_buffer() {
                    Some(buf) => {
                        self.current = Some(buf);
                        self.filled = 0;
                        self.chunk_captured_at =
                            Some(self.clock.time_of(self.frames_seen + frame as u64));
                    }
                    None => {
                        // Impossible by construction (the pool always has a buffer for us), but
                        // if it happened, skipping this callback's audio is the only option that
                        // neither waits nor allocates.
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            let Some(buf) = self.current.as_mut() else {
                break;
            };
            let n = (frames - frame).min(self.chunk_frames - self.filled);
            let src = &interleaved[frame * channels..(frame + n) * channels];
            downmix_into(src, channels, &mut buf[self.filled..self.filled + n]);
            self.filled += n;
            frame += n;
            if self.filled == self.chunk_frames {
                self.push_chunk();
            }
        }
        self.frames_seen += frames as u64;
    }

    /// A handle for the stream's error callback (which cpal takes as a separate closure).
    pub fn error_reporter(&self) -> ErrorReporter {
        ErrorReporter {
            err_tx: self.err_tx.clone(),
            counters: self.counters.clone(),
        }
    }

    /// Chunks dropped so far (also visible from the reader).
    pub fn dropped_chunks(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// An empty buffer: from the pool, or else (the reader holds none and the queue is full of
    /// unread chunks) the oldest queued chunk's, which is then dropped.
    fn take_buffer(&mut self) -> Option<Vec<f32>> {
        if let Ok(buf) = self.pool_rx.try_recv() {
            return Some(buf);
        }
        let oldest = self.oldest_rx.try_recv().ok()?;
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        Some(oldest.samples)
    }

    /// Queues the full current buffer; if the queue is full, drops the oldest chunk first.
    fn push_chunk(&mut self) {
        let Some(samples) = self.current.take() else {
            return;
        };
        let chunk = Chunk {
            samples,
            captured_at: self.chunk_captured_at.unwrap_or_else(Instant::now),
        };
        let chunk = match self.data_tx.try_send(chunk) {
            Ok(()) => return,
            Err(TrySendError::Disconnected(chunk)) => {
                // The reader is gone: keep the buffer circulating, nothing else to do.
                self.recycle(chunk.samples);
                return;
            }
            Err(TrySendError::Full(chunk)) => chunk,
        };
        if let Ok(oldest) = self.oldest_rx.try_recv() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.recycle(oldest.samples);
        }
        // Only this writer adds to the queue, so there is room now; should another producer
        // ever race us, the new chunk is the one dropped.
        if let Err(e) = self.data_tx.try_send(chunk) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.recycle(e.into_inner().samples);
        }
    }

    /// Returns a buffer to the pool, which has room for every buffer, so this never fails (and
    /// never frees the buffer here).
    fn recycle(&mut self, buf: Vec<f32>) {
        let sent = self.pool_tx.try_send(buf);
        debug_assert!(sent.is_ok(), "the pool holds every buffer");
    }
}

/// Dates frames: `anchor + frame / rate`, the anchor being the smallest upper bound
/// `delivered - frames_delivered / rate` seen over the last [`CLOCK_WINDOW`] (see "Timing" in the
/// [module docs](self)). Fixed size, so updating it does not allocate.
#[derive(Debug)]
struct SampleClock {
    rate: f64,
    /// The first callback's time; bucket numbers count [`CLOCK_WINDOW`] / [`CLOCK_BUCKETS`] steps
    /// from it.
    origin: Option<Instant>,
    /// `(bucket number, smallest bound seen in it)`, indexed by bucket number modulo the count.
    buckets: [Option<(u64, Instant)>; CLOCK_BUCKETS],
    anchor: Option<Instant>,
}

impl SampleClock {
    fn new(rate: u32) -> SampleClock {
        SampleClock {
            rate: f64::from(rate),
            origin: None,
            buckets: [None; CLOCK_BUCKETS],
            anchor: None,
        }
    }

    /// A callback at `now` delivered frames up to (not including) `frames_end`.
    fn observe(&mut self, now: Instant, frames_end: u64) {
        let span = Duration::from_secs_f64(frames_end as f64 / self.rate);
        let bound = now.checked_sub(span).unwrap_or(now);
        let origin = *self.origin.get_or_insert(now);
        let step = CLOCK_WINDOW.as_nanos() / CLOCK_BUCKETS as u128;
        let bucket = u64::try_from(now.saturating_duration_since(origin).as_nanos() / step)
            .unwrap_or(u64::MAX);
        let slot = &mut self.buckets[(bucket % CLOCK_BUCKETS as u64) as usize];
        match slot {
            Some((b, min)) if *b == bucket => *min = (*min).min(bound),
            _ => *slot = Some((bucket, bound)),
        }
        let oldest = bucket.saturating_sub(CLOCK_BUCKETS as u64 - 1);
        self.anchor = self
            .buckets
            .iter()
            .flatten()
            .filter(|(b, _)| *b >= oldest)
            .map(|(_, min)| *min)
            .min();
    }

    /// Capture time of `frame` (frames counted from the start of the stream).
    fn time_of(&self, frame: u64) -> Instant {
        let anchor = self.anchor.unwrap_or_else(Instant::now);
        anchor + Duration::from_secs_f64(frame as f64 / self.rate)
    }
}

/// Converts interleaved frames to mono `f32`: the average of each frame's channels, written to
/// `out` (one value per frame; `src.len() == out.len() * channels`).
fn downmix_into<T>(src: &[T], channels: usize, out: &mut [f32])
where
    T: SizedSample,
    f32: FromSample<T>,
{
    if channels == 1 {
        for (o, &s) in out.iter_mut().zip(src) {
            *o = f32::from_sample_(s);
        }
        return;
    }
    let scale = 1.0 / channels as f32;
    for (o, frame) in out.iter_mut().zip(src.chunks_exact(channels)) {
        let mut sum = 0.0f32;
        for &s in frame {
            sum += f32::from_sample_(s);
        }
        *o = sum * scale;
    }
}

/// The error side of a [`CaptureWriter`], for cpal's error callback.
#[derive(Debug, Clone)]
pub struct ErrorReporter {
    err_tx: Sender<String>,
    counters: Arc<Counters>,
}

impl ErrorReporter {
    /// Reports an error of the audio stream.
    ///
    /// Buffer overruns (`Xrun`, which the audio system recovers from) are counted; route changes
    /// and refused real-time priority are informational and ignored; anything else (device
    /// unplugged, stream invalidated, backend failure) ends the capture: the first such error
    /// comes out of [`CaptureReader::read`] once the audio queued before it has been read.
    pub fn report(&self, err: &cpal::Error) {
        match err.kind() {
            cpal::ErrorKind::Xrun => {
                self.counters.overruns.fetch_add(1, Ordering::Relaxed);
            }
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {}
            kind => {
                let reason = match kind {
                    cpal::ErrorKind::DeviceNotAvailable => {
                        format!("the device stopped delivering audio (disconnected?): {err}")
                    }
                    _ => format!("the capture stream failed: {err} ({kind:?})"),
                };
                self.fail(reason);
            }
        }
    }

    /// Ends the capture with `reason` (only the first failure is kept).
    pub fn fail(&self, reason: String) {
        if !self.counters.failed.swap(true, Ordering::AcqRel) {
            let _ = self.err_tx.try_send(reason);
        }
    }
}

/// The reading side of a [`capture_queue`]: receives chunks, resamples them to the target rate,
/// and tracks capture times.
pub struct CaptureReader {
    name: String,
    data_rx: Receiver<Chunk>,
    pool_tx: Sender<Vec<f32>>,
    err_rx: Receiver<String>,
    counters: Arc<Counters>,
    native_rate: u32,
    target_rate: u32,
    resampler: Option<LiveResampler>,
    /// `(input position, capture time)` of the chunks whose samples are still needed to date
    /// output: the input position is counted in frames given to the resampler.
    marks: VecDeque<(u64, Instant)>,
    /// Frames received (the resampler's input position).
    frames_in: u64,
    /// Frames returned to the caller.
    frames_out: u64,
    last_captured_at: Option<Instant>,
    stall_timeout: Option<Duration>,
    /// Set once a failure has been returned.
    failed: Option<String>,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("native_rate", &self.native_rate)
            .field("target_rate", &self.target_rate)
            .field("resampling", &self.resampler.is_some())
            .field("frames_in", &self.frames_in)
            .field("frames_out", &self.frames_out)
            .field("dropped_chunks", &self.dropped_chunks())
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Blocks up to `timeout` for the next audio; appends it to `out` (mono, target rate) and
    /// returns the number of samples appended; `Ok(0)` on timeout.
    ///
    /// Audio is returned as soon as a chunk arrives, except while resampling, where it comes in
    /// FFT units (16 ms at 48 → 16 kHz): a call may consume several chunks before it returns.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] (naming the source) once the writer reported a failure and all the audio
    /// queued before it has been returned, or when the writer has gone away (the stream
    /// stopped). Later calls return the same error.
    pub fn read(&mut self, out: &mut Vec<f32>, timeout: Duration) -> Result<usize> {
        if let Some(reason) = &self.failed {
            return Err(self.error(reason.clone()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            // Audio first, so everything captured before a failure is delivered.
            match self.data_rx.try_recv() {
                Ok(chunk) => {
                    let n = self.consume(chunk, out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    let reason = self
                        .err_rx
                        .try_recv()
                        .unwrap_or_else(|_| "the capture stream stopped unexpectedly".to_string());
                    return Err(self.set_failed(reason));
                }
                Err(TryRecvError::Empty) => {}
            }
            if let Ok(reason) = self.err_rx.try_recv() {
                return Err(self.set_failed(reason));
            }
            let now = Instant::now();
            // Wait for audio until the deadline, or until the source counts as stalled.
            let mut wake = deadline;
            if let Some(stall) = self.stall_timeout {
                let last = self.counters.last_callback();
                let stalled_at = last.unwrap_or(self.counters.origin) + stall;
                if now >= stalled_at {
                    let reason = match last {
                        Some(last) => format!(
                            "no audio for {:.1} s: the device stopped delivering audio \
                             (unplugged, or its sound server stopped)",
                            now.duration_since(last).as_secs_f64()
                        ),
                        None => format!(
                            "no audio in the {:.1} s since the stream was started: the device \
                             delivers nothing (is it in use, muted at the driver level, or gone?)",
                            now.duration_since(self.counters.origin).as_secs_f64()
                        ),
                    };
                    return Err(self.set_failed(reason));
                }
                wake = wake.min(stalled_at);
            }
            if now >= deadline {
                return Ok(0);
            }
            crossbeam_channel::select! {
                recv(self.data_rx) -> msg => {
                    // A disconnection is handled (with its error) at the top of the loop.
                    if let Ok(chunk) = msg {
                        let n = self.consume(chunk, out)?;
                        if n > 0 {
                            return Ok(n);
                        }
                    }
                },
                recv(self.err_rx) -> msg => {
                    if let Ok(reason) = msg {
                        return Err(self.set_failed(reason));
                    }
                    // The error side is gone: the writer is too; wait on the data alone.
                    if let Ok(chunk) = self.data_rx.recv_deadline(wake) {
                        let n = self.consume(chunk, out)?;
                        if n > 0 {
                            return Ok(n);
                        }
                    }
                },
                default(wake - now) => {
                    if wake >= deadline {
                        return Ok(0);
                    }
                },
            }
        }
    }

    /// Chunks the writer dropped because this reader was too slow.
    pub fn dropped_chunks(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Whether [`read`](CaptureReader::read) has returned an error (the capture is over).
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Buffer overruns reported through the [`ErrorReporter`].
    pub fn overruns(&self) -> u64 {
        self.counters.overruns.load(Ordering::Relaxed)
    }

    /// Capture time of the first sample of the audio most recently returned by
    /// [`read`](CaptureReader::read); `None` before the first audio.
    pub fn last_chunk_captured_at(&self) -> Option<Instant> {
        self.last_captured_at
    }

    /// Resamples one chunk into `out`, returns its buffer to the pool, and dates the output.
    fn consume(&mut self, chunk: Chunk, out: &mut Vec<f32>) -> Result<usize> {
        let Chunk {
            samples,
            captured_at,
        } = chunk;
        self.marks.push_back((self.frames_in, captured_at));
        self.frames_in += samples.len() as u64;
        let before = out.len();
        let produced = match &mut self.resampler {
            None => {
                out.extend_from_slice(&samples);
                samples.len()
            }
            Some(rs) => rs.push(&samples, out).map_err(|e| Error::Device {
                device: self.name.clone(),
                reason: format!("internal resampler error: {e}"),
            })?,
        };
        // The pool has room for every buffer; if it did not, dropping the buffer here (on the
        // reading thread) would be harmless.
        let _ = self.pool_tx.try_send(samples);
        if produced > 0 {
            debug_assert_eq!(out.len() - before, produced);
            self.last_captured_at = Some(self.time_of_output(self.frames_out));
            self.frames_out += produced as u64;
        }
        Ok(produced)
    }

    /// Capture time of output frame `j`: the input at position `j × native / target`, dated from
    /// the chunk that contains it. Forgets chunks no longer needed (output only moves forward).
    fn time_of_output(&mut self, j: u64) -> Instant {
        let num = u128::from(j) * u128::from(self.native_rate);
        let den = u128::from(self.target_rate);
        let pos = u64::try_from(num / den).unwrap_or(u64::MAX);
        while self.marks.len() > 1 && self.marks[1].0 <= pos {
            self.marks.pop_front();
        }
        let (start, at) = self.marks[0];
        let offset =
            (num - u128::from(start) * den) as f64 / (den as f64 * f64::from(self.native_rate));
        at + Duration::from_secs_f64(offset.max(0.0))
    }

    fn set_failed(&mut self, reason: String) -> Error {
        self.failed = Some(reason.clone());
        self.error(reason)
    }

    fn error(&self, reason: String) -> Error {
        Error::Device {
            device: self.name.clone(),
            reason,
        }
    }
}

/// Streaming, time-aligned resampling of mono audio (rubato's FFT resampler; see
/// [`crate::source::file::AudioFile`] for why it is preferred to the sinc resamplers).
struct LiveResampler {
    resampler: FftFixedIn<f32>,
    unit_in: usize,
    /// Input not yet resampled (fewer than `unit_in` frames between calls).
    pending: Vec<f32>,
    out: Vec<Vec<f32>>,
    /// Output frames still to drop to compensate the resampler's delay.
    to_skip: usize,
}

impl LiveResampler {
    fn new(source_rate: u32, target_rate: u32) -> Result<LiveResampler> {
        let units = resample::units(source_rate, target_rate, MIN_FFT_UNIT, MAX_FFT_UNIT).map_err(|u| {
            Error::config(
                "target_rate",
                format!(
                    "cannot resample {source_rate} Hz to {target_rate} Hz in real time: the rates have \
                     too small a common divisor ({}); choose a standard rate (e.g. 16000 or 48000 Hz)",
                    u.gcd
                ),
            )
        })?;
        let unit_in = units.unit_in;
        let (resampler, out, to_skip) = resample::fft_resampler(source_rate, target_rate, unit_in)
            .map_err(|e| {
                Error::config(
                    "target_rate",
                    format!("cannot resample {source_rate} Hz to {target_rate} Hz: {e}"),
                )
            })?;
        Ok(LiveResampler {
            resampler,
            unit_in,
            pending: Vec::with_capacity(2 * unit_in),
            out,
            to_skip,
        })
    }

    /// Adds input; resamples every complete unit; appends the output (minus the delay still to
    /// drop) to `out`. Returns the number of samples appended.
    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<usize, rubato::ResampleError> {
        self.pending.extend_from_slice(input);
        let mut appended = 0;
        let mut start = 0;
        while self.pending.len() - start >= self.unit_in {
            let (used, produced) = self.resampler.process_into_buffer(
                &[&self.pending[start..start + self.unit_in]],
                &mut self.out,
                None,
            )?;
            start += used;
            let skip = self.to_skip.min(produced);
            self.to_skip -= skip;
            out.extend_from_slice(&self.out[0][skip..produced]);
            appended += produced - skip;
        }
        self.pending.drain(..start);
        Ok(appended)
    }
}

fn check_rate(name: &str, rate: u32) -> Result<()> {
    if rate == 0 || rate > MAX_SAMPLE_RATE {
        return Err(Error::config(
            name,
            format!("{rate} Hz is out of range (1..={MAX_SAMPLE_RATE} Hz)"),
        ));
    }
    Ok(())
}

/// The name a device is listed and selected by.
fn device_name(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_string())
        .or_else(|_| device.description().map(|d| d.name().to_string()))
        .unwrap_or_else(|_| "(unnamed device)".to_string())
}

fn input_devices(host: &cpal::Host) -> Result<Vec<cpal::Device>> {
    Ok(host
        .input_devices()
        .map_err(|e| Error::Device {
            device: format!("(host {})", host.id().name()),
            reason: format!("cannot list the input devices: {e}"),
        })?
        .collect())
}

/// Resolves `--device`: none → the default device; an index; an exact name; or a
/// case-insensitive substring of one name or description.
fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
    let not_found = |wanted: &str, reason: String, devices: &[cpal::Device]| {
        let list = if devices.is_empty() {
            "there are no input devices".to_string()
        } else {
            let names: Vec<String> = devices
                .iter()
                .enumerate()
                .map(|(i, d)| format!("{i}: {}", device_name(d)))
                .collect();
            format!("available input devices: {}", names.join(", "))
        };
        Error::Device {
            device: wanted.to_string(),
            reason: format!("{reason}; {list}"),
        }
    };
    let Some(wanted) = wanted else {
        return host.default_input_device().ok_or_else(|| {
            let devices = input_devices(host).unwrap_or_default();
            not_found(
                "(default)",
                "there is no default input device".into(),
                &devices,
            )
        });
    };
    let devices = input_devices(host)?;
    if let Ok(index) = wanted.trim().parse::<usize>() {
        let n = devices.len();
        return devices.into_iter().nth(index).ok_or_else(|| {
            let devices = input_devices(host).unwrap_or_default();
            not_found(
                wanted,
                format!("no input device has index {index} (there are {n})"),
                &devices,
            )
        });
    }
    if let Some(i) = devices.iter().position(|d| device_name(d) == wanted) {
        return Ok(devices.into_iter().nth(i).expect("position is in range"));
    }
    let needle = wanted.to_lowercase();
    let matches: Vec<usize> = devices
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            device_name(d).to_lowercase().contains(&needle)
                || d.description()
                    .is_ok_and(|desc| desc.name().to_lowercase().contains(&needle))
        })
        .map(|(i, _)| i)
        .collect();
    match matches[..] {
        [i] => Ok(devices.into_iter().nth(i).expect("index is in range")),
        [] => Err(not_found(
            wanted,
            "no input device has this name or index".into(),
            &devices,
        )),
        _ => {
            let names: Vec<String> = matches
                .iter()
                .map(|&i| format!("{i}: {}", device_name(&devices[i])))
                .collect();
            Err(Error::Device {
                device: wanted.to_string(),
                reason: format!(
                    "matches several input devices ({}); give the full name or the index",
                    names.join(", ")
                ),
            })
        }
    }
}

/// Preference order of sample formats (lower is better); DSD cannot be used.
fn format_rank(f: SampleFormat) -> Option<u8> {
    Some(match f {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::I24 => 3,
        SampleFormat::F64 => 4,
        SampleFormat::U16 => 5,
        SampleFormat::I8 => 6,
        SampleFormat::U8 => 7,
        SampleFormat::U24 => 8,
        SampleFormat::U32 => 9,
        SampleFormat::I64 => 10,
        SampleFormat::U64 => 11,
        _ => return None,
    })
}

/// Picks the configuration range and rate to open: the device's default channel count when
/// possible, the rate per [`MicOptions::native_rate`], the best sample format.
fn choose_config(
    ranges: &[SupportedStreamConfigRange],
    default_channels: Option<u16>,
    opts: &MicOptions,
) -> std::result::Result<(SupportedStreamConfigRange, u32), String> {
    let usable: Vec<&SupportedStreamConfigRange> = ranges
        .iter()
        .filter(|r| {
            format_rank(r.sample_format()).is_some() && r.channels() > 0 && r.channels() <= 64
        })
        .collect();
    if usable.is_empty() {
        return Err("it offers no usable input configuration".into());
    }
    let rates: Vec<u32> = match opts.native_rate {
        Some(rate) => vec![rate],
        None => [opts.target_rate]
            .into_iter()
            .chain(PREFERRED_RATES)
            .collect(),
    };
    // Rank: rate preference first, then the default channel count, then fewer channels, then
    // the sample format.
    type Key = (usize, bool, u16, u8);
    let mut best: Option<(Key, &SupportedStreamConfigRange, u32)> = None;
    for r in &usable {
        let rank_fmt = format_rank(r.sample_format()).unwrap_or(u8::MAX);
        let not_default_ch = default_channels.is_some_and(|c| c != r.channels());
        let rate = rates
            .iter()
            .enumerate()
            .find(|(_, rate)| r.contains_rate(**rate))
            .map(|(i, rate)| (i, *rate));
        let (rate_rank, rate) = match rate {
            Some(found) => found,
            None if opts.native_rate.is_some() => continue,
            // None of the preferred rates: the range's highest.
            None => (rates.len(), r.max_sample_rate()),
        };
        let key = (rate_rank, not_default_ch, r.channels(), rank_fmt);
        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
            best = Some((key, r, rate));
        }
    }
    match best {
        Some((_, r, rate)) => Ok((*r, rate)),
        None => Err(format!(
            "it cannot capture at {} Hz",
            opts.native_rate.unwrap_or(opts.target_rate)
        )),
    }
}

/// Human-readable summaries of configuration ranges, e.g. `1-32 ch, 1-384000 Hz, i16/f32,
/// buffer 1-699051 frames`: channel counts merged, formats offered with the same channels and
/// rates on one line, buffer sizes spanned (ALSA plugin devices offer 1-32 channels, each with
/// its own buffer range).
fn describe_ranges(ranges: &[SupportedStreamConfigRange]) -> Vec<String> {
    struct Group {
        rates: (u32, u32),
        format: SampleFormat,
        channels: Vec<u16>,
        buffer: Option<(u32, u32)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for r in ranges {
        let rates = (r.min_sample_rate(), r.max_sample_rate());
        let format = r.sample_format();
        let i = match groups
            .iter()
            .position(|g| g.rates == rates && g.format == format)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    rates,
                    format,
                    channels: Vec::new(),
                    buffer: None,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.channels.push(r.channels());
        if let SupportedBufferSize::Range { min, max } = *r.buffer_size() {
            g.buffer = Some(match g.buffer {
                Some((lo, hi)) => (lo.min(min), hi.max(max)),
                None => (min, max),
            });
        }
    }
    // Formats offered with the same channels and rates share a line.
    type Line = (String, Vec<SampleFormat>, Option<(u32, u32)>);
    let mut lines: Vec<Line> = Vec::new();
    for mut g in groups {
        g.channels.sort_unstable();
        g.channels.dedup();
        let (min, max) = g.rates;
        let rates = if min == max {
            format!("{min} Hz")
        } else {
            format!("{min}-{max} Hz")
        };
        let head = format!("{} ch, {rates}", compact_ranges(&g.channels));
        match lines.iter_mut().find(|(h, _, _)| *h == head) {
            Some((_, formats, buffer)) => {
                formats.push(g.format);
                *buffer = match (*buffer, g.buffer) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (x, y) => x.or(y),
                };
            }
            None => lines.push((head, vec![g.format], g.buffer)),
        }
    }
    lines
        .into_iter()
        .map(|(head, formats, buffer)| {
            let formats: Vec<String> = formats.iter().map(ToString::to_string).collect();
            let buffer = match buffer {
                Some((lo, hi)) => format!(", buffer {lo}-{hi} frames"),
                None => String::new(),
            };
            format!("{head}, {}{buffer}", formats.join("/"))
        })
        .collect()
}

/// `[1, 2, 3, 6]` → `1-3, 6`.
fn compact_ranges(values: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            values[i].to_string()
        } else {
            format!("{}-{}", values[i], values[j])
        });
        i = j + 1;
    }
    parts.join(", ")
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
