//! Whole-file feature extraction on several threads.
//!
//! A live stream must go frame by frame, but a recorded file can be cut into
//! blocks of frames processed in parallel: a frame depends only on its own
//! `n_fft` samples, so each block gets the samples its frames cover (with the
//! overlap) and the results are concatenated in order, then go through the
//! output stage ([`FrontEnd::output_stage`]: `top_db`, `scale`, `offset`). The
//! output is bit for bit that of [`FrontEnd::push`] + [`FrontEnd::finish`],
//! and memory stays bounded by a few blocks whatever the file length.

use std::collections::BTreeMap;

use crossbeam_channel::bounded;

use super::FrontEnd;
use crate::Result;

/// How [`extract_frames`] splits the work.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Worker threads (at least 1). Default: the available parallelism.
    pub threads: usize,
    /// Frames per block handed to a worker. Default 2048 (about 20 s of
    /// 10 ms frames): large enough to amortise hand-over, small enough to
    /// spread a few minutes of audio over the cores.
    pub block_frames: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block_frames: 2048,
        }
    }
}

/// A block of work: frames starting at `range.start` of `samples`, in order `index`.
struct Job {
    index: usize,
    samples: Vec<f32>,
    range: std::ops::Range<usize>,
}

/// Extracts the frames of a whole stream on several threads.
///
/// `next_chunk` appends the next samples to its argument and returns how many
/// (0 at the end), like [`crate::source::AudioFile::read_chunk`]; it runs on
/// the calling thread while the workers compute, so decoding overlaps
/// feature extraction. Returns the frames (`[frames * n_bins]`) and the number
/// of samples read.
///
/// # Errors
/// The first error of `next_chunk`.
pub fn extract_frames(
    front: &FrontEnd,
    opts: BatchOptions,
    mut next_chunk: impl FnMut(&mut Vec<f32>) -> Result<usize>,
) -> Result<(Vec<f32>, usize)> {
    let cfg = front.config().clone();
    let (n_fft, hop, n_bins) = (cfg.n_fft, cfg.hop_length(), cfg.n_bins());
    let pad = if cfg.center { n_fft / 2 } else { 0 };
    let front_pad = pad + cfg.pad_left;
    let threads = opts.threads.max(1);
    let block_frames = opts.block_frames.max(1);
    let (job_tx, job_rx) = bounded::<Job>(threads * 2);
    let (res_tx, res_rx) = bounded::<(usize, Vec<f32>)>(threads * 2);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (job_rx, res_tx) = (job_rx.clone(), res_tx.clone());
            let mut fe = front.fork();
            scope.spawn(move || {
                for job in job_rx {
                    let mut frames = Vec::with_capacity(block_frames * n_bins);
                    fe.frames_of(&job.samples[job.range.clone()], &mut frames);
                    if res_tx.send((job.index, frames)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        drop(job_rx);

        let mut out = Vec::new();
        let mut done: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
        let mut next_out = 0usize;
        let mut sent = 0usize;
        let mut collect = |block: (usize, Vec<f32>), out: &mut Vec<f32>| {
            done.insert(block.0, block.1);
            while let Some(f) = done.remove(&next_out) {
                out.extend_from_slice(&f);
                next_out += 1;
            }
        };

        // `buf` holds the (padded) signal from global sample `buf_start` on;
        // `next_frame` is the first frame not yet handed out.
        let mut buf: Vec<f32> = vec![0.0; front_pad];
        let mut buf_start = 0usize;
        let mut next_frame = 0usize;
        let mut n_samples = 0usize;
        let mut finished = false;
        let result = loop {
            if !finished {
                let before = buf.len();
                match next_chunk(&mut buf) {
                    Ok(0) => {
                        finished = true;
                        buf.resize(buf.len() + pad, 0.0);
                        // `pad_end`: complete a last partial frame.
                        let total = buf_start + buf.len();
                        let full = if total < n_fft {
                            0
                        } else {
                            1 + (total - n_fft) / hop
                        };
                        let zeros = cfg.end_padding(total.saturating_sub(full * hop));
                        buf.resize(buf.len() + zeros, 0.0);
                    }
                    Ok(_) => n_samples += buf.len() - before,
                    Err(e) => break Err(e),
                }
            }
            let buf_end = buf_start + buf.len();
            // Hand out every complete block (or, at the end, what remains).
            loop {
                let first = next_frame * hop;
                let last_needed = (next_frame + block_frames - 1) * hop + n_fft;
                let complete = last_needed <= buf_end;
                if !(complete || finished) || first + n_fft > buf_end {
                    break;
                }
                let end = last_needed.min(buf_end);
                let n = if complete {
                    block_frames
                } else {
                    1 + (end - first - n_fft) / hop
                };
                next_frame += n;
                // The block's buffer goes to the worker as it is; only the
                // samples later frames still need are copied into a new one.
                let keep_from = (next_frame * hop).min(buf_end);
                let samples = std::mem::take(&mut buf);
                buf.extend_from_slice(&samples[keep_from - buf_start..]);
                let mut job = Job {
                    index: sent,
                    range: first - buf_start..end - buf_start,
                    samples,
                };
                buf_start = keep_from;
                // Keep the results flowing while the job queue is full.
                loop {
                    match job_tx.try_send(job) {
                        Ok(()) => break,
                        Err(crossbeam_channel::TrySendError::Full(j)) => {
                            job = j;
                            if let Ok(r) = res_rx.recv() {
                                collect(r, &mut out);
                            }
                        }
                        // Workers only stop once this sender is dropped.
                        Err(crossbeam_channel::TrySendError::Disconnected(_)) => break,
                    }
                }
                sent += 1;
                if !complete {
                    break;
                }
            }
            if finished {
                break Ok(n_samples);
            }
        };
        drop(job_tx);
        for r in res_rx.iter() {
            collect(r, &mut out);
        }
        // `top_db` groups may span blocks, so the output stage runs once
        // over the whole stream, in order.
        if cfg.has_output_stage() {
            front.output_stage(&mut out);
        }
        result.map(|n| (out, n))
    })
}
