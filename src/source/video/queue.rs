//! The bounded frame queue between a reader thread and [`super::VideoSource::read`].
//!
//! Frames travel as [`Packet`]s; their buffers come back through a second channel once the
//! consumer has swapped them out, so steady-state decoding allocates nothing. In drop-oldest mode
//! (live inputs) the producer never blocks: when the queue is full it takes the oldest packet out
//! itself (it holds a clone of the receiver) and counts it as dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use super::Frame;
use crate::{Error, Result};

/// One decoded frame in transit.
pub(crate) struct Packet {
    pub index: u64,
    pub pts_s: f64,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// State both ends see.
struct Shared {
    dropped: AtomicU64,
    stop: AtomicBool,
    /// Set by the producer before it ends with an error; read once the queue is drained.
    error: Mutex<Option<Error>>,
}

/// The reader thread's end.
pub(crate) struct Producer {
    tx: Sender<Packet>,
    /// Present in drop-oldest mode, to take the oldest packet out when the queue is full.
    oldest: Option<Receiver<Packet>>,
    free: Receiver<Vec<u8>>,
    spare: Option<Vec<u8>>,
    shared: Arc<Shared>,
}

/// The consumer's end.
pub(crate) struct Consumer {
    rx: Receiver<Packet>,
    free: Sender<Vec<u8>>,
    shared: Arc<Shared>,
    /// Live sources: error out after this long without a frame.
    stall: Option<Duration>,
}

/// A queue of `capacity` frames; `drop_oldest` for live inputs.
pub(crate) fn queue(
    capacity: usize,
    drop_oldest: bool,
    stall: Option<Duration>,
) -> (Producer, Consumer) {
    let (tx, rx) = bounded(capacity.max(1));
    let (free_tx, free_rx) = bounded(capacity.max(1) + 2);
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    let producer = Producer {
        tx,
        oldest: drop_oldest.then(|| rx.clone()),
        free: free_rx,
        spare: None,
        shared: shared.clone(),
    };
    let consumer = Consumer {
        rx,
        free: free_tx,
        shared,
        stall,
    };
    (producer, consumer)
}

impl Producer {
    /// A buffer of `len` bytes, recycled when possible (its contents are arbitrary).
    pub fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self
            .spare
            .take()
            .or_else(|| self.free.try_recv().ok())
            .unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Whether the consumer asked the source to stop.
    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Queues a frame. Returns `false` when the consumer is gone or stopped: the reader should
    /// end. In drop-oldest mode this never blocks.
    pub fn push(&mut self, mut packet: Packet) -> bool {
        if self.stopped() {
            return false;
        }
        let Some(oldest) = &self.oldest else {
            return self.tx.send(packet).is_ok();
        };
        loop {
            match self.tx.try_send(packet) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    packet = back;
                    if let Ok(old) = oldest.try_recv() {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        self.spare = Some(old.rgb);
                    }
                    if self.stopped() {
                        return false;
                    }
                }
            }
        }
    }

    /// Ends the stream with an error, delivered after the frames already queued.
    pub fn fail(&self, error: Error) {
        let mut slot = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(error);
    }
}

impl Consumer {
    /// Frames dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Asks the producer to stop; [`Consumer::read`] returns `Ok(false)` from now on.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// A handle that stops the stream from another thread.
    pub fn stop_flag(&self) -> Arc<dyn Fn() + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || shared.stop.store(true, Ordering::Relaxed))
    }

    /// The next frame into `frame`; `Ok(false)` at the end or once stopped. `name` is used in
    /// the stall error.
    pub fn read(&mut self, frame: &mut Frame, name: &str) -> Result<bool> {
        let start = Instant::now();
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(p) => {
                    frame.index = p.index;
                    frame.pts_s = p.pts_s;
                    frame.width = p.width;
                    frame.height = p.height;
                    let old = std::mem::replace(&mut frame.rgb, p.rgb);
                    if old.capacity() > 0 {
                        let _ = self.free.try_send(old);
                    }
                    return Ok(true);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(stall) = self.stall
                        && start.elapsed() >= stall
                    {
                        return Err(Error::Video {
                            path: name.into(),
                            reason: format!(
                                "no frame for {:.0} s: the input stalled",
                                stall.as_secs_f64()
                            ),
                        });
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let err = self
                        .shared
                        .error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    return match err {
                        Some(e) => Err(e),
                        None => Ok(false),
                    };
                }
            }
        }
    }
}
