//! The capture queue: the allocation-free hand-off from the audio callback to the reading
//! thread, its sample clock, and the live resampler (see the [module docs](super)).

use super::*;

/// Resampling is done in FFT units of at least this many frames on both sides.
///
/// Smaller than for files (1024), because each unit is latency: at 48 → 16 kHz a unit is 768
/// input frames (16 ms) and the resampler's delay half an output unit (8 ms). The anti-aliasing
/// filter is still sharp: measured (`tests/mic.rs`), a 1 kHz tone comes out within -135 dB
/// (48 → 16 kHz) and -121 dB (44.1 → 16 kHz) of the ideal tone, and at 48 → 16 kHz tones of
/// 8.6 kHz and up are attenuated by more than 140 dB.
pub(super) const MIN_FFT_UNIT: usize = 256;

/// Largest FFT unit (frames, either side) accepted; rate pairs needing more are refused.
pub(super) const MAX_FFT_UNIT: usize = 1 << 16;

/// Window of the sample clock's anchor (see "Timing" in the [module docs](super)): the anchor is
/// the least-delayed callback's over this long (the window slides in eighths).
pub const CLOCK_WINDOW: Duration = Duration::from_secs(2);

/// Steps in which the sample clock's window slides.
const CLOCK_BUCKETS: usize = 8;

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
/// See the [module docs](super) for how buffers circulate and when chunks are dropped.
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
pub(super) struct Counters {
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
pub(super) struct Chunk {
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
/// [module docs](super)). Fixed size, so updating it does not allocate.
#[derive(Debug)]
pub(super) struct SampleClock {
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
pub(super) fn downmix_into<T>(src: &[T], channels: usize, out: &mut [f32])
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
pub(super) struct LiveResampler {
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

pub(super) fn check_rate(name: &str, rate: u32) -> Result<()> {
    if rate == 0 || rate > MAX_SAMPLE_RATE {
        return Err(Error::config(
            name,
            format!("{rate} Hz is out of range (1..={MAX_SAMPLE_RATE} Hz)"),
        ));
    }
    Ok(())
}
