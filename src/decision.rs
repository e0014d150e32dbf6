//! The decision stage: per-frame posteriors → label events.
//!
//! A recurrent model emits, for every frame, one score per label. A user
//! wants *events* ("`yes` from 1.20 s to 1.55 s"). This module turns one into
//! the other, streaming, with bounded memory and no allocation per frame.
//!
//! # Semantics
//!
//! Frame `i` (counted from the last [`Decider::reset`]) is at time
//! `time_offset_s + i * frame_period_s`. Times are computed from the integer
//! frame index by one multiplication, never accumulated, so they do not drift
//! over long streams.
//!
//! **Smoothing.** Each label's score is a causal moving average of its
//! posteriors over the last `W = max(1, round(smoothing_s / frame_period_s))`
//! frames; until `W` frames exist, it averages over the frames that do (so
//! the first frame is not diluted by imaginary zeros). Causal because the
//! stage runs live: a centred window would delay every decision by `W/2`
//! frames anyway. With `W = 1` scores pass through unchanged.
//!
//! The average is kept as a running sum (add the new frame, subtract the one
//! leaving the window) over a ring buffer, which costs O(labels) per frame
//! whatever `W` is. A running sum accumulates rounding error with every
//! add/subtract pair, which over hours of frames (millions of pairs) would
//! drift visibly in `f32`. Two measures keep it exact enough for any stream
//! length: the sums are kept in `f64`, and every time the ring wraps around
//! (every `W` frames) they are recomputed from the ring's contents. The
//! error is therefore bounded by `W` frames' worth of `f64` rounding
//! (~1e-13 relative), not by the stream length, and the recomputation costs
//! O(labels) per frame amortised. Because the recomputation happens at fixed
//! frame indices, results do not depend on how frames are split into
//! [`Decider::push`] calls. Smoothed scores are rounded to `f32` once, from
//! the `f64` mean.
//!
//! **Events, per label, independently** (labels are not mutually exclusive:
//! two events of different labels may overlap). An event starts at the first
//! frame whose smoothed score is `>= on[label]`, unless the label is in its
//! refractory period. It ends at the first later frame whose smoothed score
//! is `< off[label]`, with `off <= on` (hysteresis: a score wobbling around
//! one threshold would otherwise split one event into many). `start_s` is
//! the time of the starting frame and `end_s` the time of the ending frame:
//! the interval is half-open, `[start_s, end_s)`, so its length is exactly
//! the number of active frames times the frame period. `score` is the
//! maximum smoothed score over the active frames.
//!
//! **Minimum duration.** An event with `end_s - start_s < min_duration_s` is
//! dropped: it is never emitted and does not start a refractory period
//! (nothing was reported, so there is nothing to debounce).
//!
//! **Refractory period.** After an *emitted* event of a label ends at
//! `end_s`, that label cannot start a new event at a frame earlier than
//! `end_s + refractory_s`. A score that is still (or again) `>= on` when the
//! period is over starts an event at the first frame after it: the rule
//! suppresses starts, it does not require a fresh rising edge.
//!
//! Durations are compared in whole frames: `min_duration_s` and
//! `refractory_s` are converted to the smallest frame count `k` with
//! `k * frame_period_s >= duration` (with a tolerance of 1e-6 frame, so that
//! `0.05 s / 0.01 s` is 5 frames, not 6 because of rounding). Comparing
//! seconds directly would make the outcome at an exact boundary depend on
//! the rounding of the two time stamps.
//!
//! **Ignored labels** are smoothed (their scores appear in
//! [`Decider::last_smoothed`]) but never produce events.
//!
//! **Order.** [`Decider::push`] appends events as they end: in order of end
//! time, ties broken by label index. [`Decider::finish`] closes the events
//! still open at the time after the last frame (subject to the minimum
//! duration) and resets.
//!
//! **Bad input.** A chunk whose length is not a multiple of the number of
//! labels, or that holds a NaN or infinite value, is refused as a whole
//! before anything is consumed, so the decider's state is unchanged and the
//! caller may retry or skip it. A non-finite value would otherwise poison the
//! running sum and, through the comparisons, silently suppress events.

use crate::bundle::DecisionSection;
use crate::{Error, Result};

/// Largest ring buffer (frames × labels) a configuration may ask for:
/// 2^26 `f32` values, 256 MiB.
const MAX_RING: usize = 1 << 26;

/// Tolerance, in frames, when converting a duration to a frame count.
const FRAME_TOLERANCE: f64 = 1e-6;

/// An event: label `label` was active from `start_s` to `end_s` (seconds
/// from the start of the stream, end exclusive), with `score` the maximum
/// smoothed score inside it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// The label's name.
    pub label: String,
    /// Time of the first active frame, seconds.
    pub start_s: f64,
    /// Time of the first frame after the event (exclusive end), seconds.
    pub end_s: f64,
    /// Maximum smoothed score over the event's frames.
    pub score: f32,
}

/// Validated decision settings, per label.
#[derive(Debug, Clone)]
pub struct DecisionConfig {
    /// Moving-average window in frames (at least 1; 1 means no smoothing).
    pub smoothing_frames: usize,
    /// Per label: smoothed score at or above which an event starts.
    pub on: Vec<f32>,
    /// Per label: smoothed score below which an active event ends (`<= on`).
    pub off: Vec<f32>,
    /// Events shorter than this are dropped, seconds.
    pub min_duration_s: f64,
    /// After an emitted event ends, its label cannot start again for this long, seconds.
    pub refractory_s: f64,
    /// Per label: true if the label never produces events.
    pub ignore: Vec<bool>,
    /// An open event ends once its score has stayed below `off` this long,
    /// seconds; a score back at `on` cancels the wait (0: end at once).
    pub min_silence_s: f64,
    /// Added before each event's start (clamped at 0) and after its end, seconds.
    pub pad_s: f64,
}

impl DecisionConfig {
    /// From a bundle's `[decision]` section, its labels (in model output
    /// order), and the frame period in seconds.
    ///
    /// Each label's `on` threshold is `thresholds[label]` if given, else
    /// `threshold`; its `off` threshold is `off_threshold` if given, else its
    /// `on` threshold.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key at fault (e.g.
    /// `decision.thresholds.yes`): a threshold outside [0, 1], an `off`
    /// threshold above a label's `on` threshold, a per-label threshold or an
    /// ignored label that is not one of `labels`, a negative or non-finite
    /// duration, a smoothing window too large to hold, an empty or duplicated
    /// label list (`labels`), or a frame period that is not positive
    /// (`frame_period_s`).
    pub fn from_section(
        sec: &DecisionSection,
        labels: &[String],
        frame_period_s: f64,
    ) -> Result<Self> {
        if !(frame_period_s.is_finite() && frame_period_s > 0.0) {
            return Err(Error::config(
                "frame_period_s",
                format!("{frame_period_s} is not a positive number of seconds"),
            ));
        }
        if labels.is_empty() {
            return Err(Error::config("labels", "must list at least one label"));
        }
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].contains(l) {
                return Err(Error::config("labels", format!("`{l}` appears twice")));
            }
        }
        let in_unit = |v: f64| (0.0..=1.0).contains(&v);
        if !in_unit(sec.threshold) {
            return Err(Error::config(
                "decision.threshold",
                format!("{} is not in [0, 1]", sec.threshold),
            ));
        }
        if let Some(off) = sec.off_threshold
            && !in_unit(off)
        {
            return Err(Error::config(
                "decision.off_threshold",
                format!("{off} is not in [0, 1]"),
            ));
        }
        for (label, &t) in &sec.thresholds {
            let key = format!("decision.thresholds.{label}");
            if !labels.contains(label) {
                return Err(Error::config(key, "not one of `labels`"));
            }
            if !in_unit(t) {
                return Err(Error::config(key, format!("{t} is not in [0, 1]")));
            }
        }
        for label in &sec.ignore {
            if !labels.contains(label) {
                return Err(Error::config(
                    "decision.ignore",
                    format!("`{label}` is not one of `labels`"),
                ));
            }
        }
        for (key, v) in [
            ("decision.smoothing_s", sec.smoothing_s),
            ("decision.min_duration_s", sec.min_duration_s),
            ("decision.refractory_s", sec.refractory_s),
            ("decision.min_silence_s", sec.min_silence_s),
            ("decision.pad_s", sec.pad_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(
                    key,
                    format!("{v} is not a non-negative number of seconds"),
                ));
            }
        }

        let mut on = Vec::with_capacity(labels.len());
        let mut off = Vec::with_capacity(labels.len());
        for label in labels {
            let (on_t, per_label) = match sec.thresholds.get(label) {
                Some(&t) => (t, true),
                None => (sec.threshold, false),
            };
            let off_t = sec.off_threshold.unwrap_or(on_t);
            if off_t > on_t {
                // Blame the per-label override if there is one, else the
                // off threshold (as `Bundle::parse` does).
                return Err(if per_label {
                    Error::config(
                        format!("decision.thresholds.{label}"),
                        format!(
                            "{on_t} is below decision.off_threshold ({off_t}); \
                             an event would end at a score that starts it"
                        ),
                    )
                } else {
                    Error::config(
                        "decision.off_threshold",
                        format!("{off_t} must be in [0, threshold = {on_t}]"),
                    )
                });
            }
            // f32 rounding is monotonic, so off <= on survives it.
            on.push(on_t as f32);
            off.push(off_t as f32);
        }

        let frames = (sec.smoothing_s / frame_period_s).round();
        if frames * labels.len() as f64 > MAX_RING as f64 {
            return Err(Error::config(
                "decision.smoothing_s",
                format!(
                    "{} s is {frames} frames of {} labels, more than the {MAX_RING} values \
                     the decision stage holds",
                    sec.smoothing_s,
                    labels.len()
                ),
            ));
        }
        let smoothing_frames = (frames as usize).max(1);

        let ignore = labels.iter().map(|l| sec.ignore.contains(l)).collect();
        Ok(DecisionConfig {
            smoothing_frames,
            on,
            off,
            min_duration_s: sec.min_duration_s,
            refractory_s: sec.refractory_s,
            ignore,
            min_silence_s: sec.min_silence_s,
            pad_s: sec.pad_s,
        })
    }
}

/// The smallest whole number of frames `k` with `k * frame_period_s >=
/// duration_s` (within [`FRAME_TOLERANCE`]); 0 for a non-positive duration.
/// Saturates instead of failing on absurd inputs.
fn frames_at_least(duration_s: f64, frame_period_s: f64) -> u64 {
    if duration_s.is_nan() || duration_s <= 0.0 {
        return 0;
    }
    let k = (duration_s / frame_period_s - FRAME_TOLERANCE).ceil();
    // `as` saturates (NaN → 0, +inf → u64::MAX).
    if k.is_nan() {
        u64::MAX
    } else {
        k.max(0.0) as u64
    }
}

/// Per-label event state.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct LabelState {
    /// The open event: its first frame and its maximum smoothed score so far.
    open: Option<(u64, f32)>,
    /// First frame at which a new event may start (refractory period).
    allowed_from: u64,
    /// While an event is open: the first frame of the current run below
    /// `off` (the event's end, once the silence has lasted long enough).
    quiet_since: Option<u64>,
}

/// What [`Decider::state`] gives.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeciderState {
    on: Vec<f32>,
    off: Vec<f32>,
    ring: Vec<f32>,
    pos: usize,
    filled: usize,
    sums: Vec<f64>,
    smoothed: Vec<f32>,
    states: Vec<LabelState>,
    frame: u64,
}

/// Streaming decision stage, one per stream. It is stateful (smoothing
/// history, open events, refractory periods): call [`Decider::reset`] at
/// discontinuities in the input.
#[derive(Debug, Clone)]
pub struct Decider {
    labels: Vec<String>,
    n_labels: usize,
    on: Vec<f32>,
    off: Vec<f32>,
    ignore: Vec<bool>,
    cfg: DecisionConfig,
    frame_period_s: f64,
    time_offset_s: f64,
    min_frames: u64,
    refractory_frames: u64,
    silence_frames: u64,
    /// Smoothing window, frames.
    window: usize,
    /// The last `window` frames, row-major, `window * n_labels`.
    ring: Vec<f32>,
    /// Next row of `ring` to write.
    pos: usize,
    /// Rows of `ring` holding frames (<= window).
    filled: usize,
    /// Per label: sum of the `filled` rows.
    sums: Vec<f64>,
    smoothed: Vec<f32>,
    states: Vec<LabelState>,
    frame: u64,
}

impl Decider {
    /// A decider for `labels` (in model output order) with settings `cfg`.
    ///
    /// `time_offset_s` is the time of frame 0 (e.g. the centre of the first
    /// analysis window); frame `i` is at `time_offset_s + i * frame_period_s`.
    ///
    /// `cfg` is expected to come from [`DecisionConfig::from_section`] for
    /// the same labels and frame period. A hand-made one is made consistent
    /// rather than refused: per-label vectors are cut or extended to
    /// `labels.len()` (a missing `on` is 0.5, a missing `off` is `on`, a
    /// missing `ignore` is false), `off` is capped at `on`, and a window of 0
    /// frames becomes 1.
    pub fn new(
        cfg: DecisionConfig,
        labels: Vec<String>,
        frame_period_s: f64,
        time_offset_s: f64,
    ) -> Self {
        let n = labels.len();
        let on: Vec<f32> = (0..n)
            .map(|j| cfg.on.get(j).copied().unwrap_or(0.5))
            .collect();
        let off: Vec<f32> = (0..n)
            .map(|j| cfg.off.get(j).copied().unwrap_or(on[j]).min(on[j]))
            .collect();
        let ignore: Vec<bool> = (0..n)
            .map(|j| cfg.ignore.get(j).copied().unwrap_or(false))
            .collect();
        let window = cfg.smoothing_frames.max(1);
        Decider {
            n_labels: n,
            on,
            off,
            ignore,
            min_frames: frames_at_least(cfg.min_duration_s, frame_period_s),
            refractory_frames: frames_at_least(cfg.refractory_s, frame_period_s),
            silence_frames: frames_at_least(cfg.min_silence_s, frame_period_s),
            window,
            ring: vec![0.0; window.saturating_mul(n)],
            pos: 0,
            filled: 0,
            sums: vec![0.0; n],
            smoothed: vec![0.0; n],
            states: vec![LabelState::default(); n],
            frame: 0,
            labels,
            cfg,
            frame_period_s,
            time_offset_s,
        }
    }

    /// Feeds consecutive frames of posteriors, `n_frames * n_labels` values,
    /// row-major (one row per frame). Appends the events that end within
    /// these frames to `events`, in order of end time, ties by label index.
    ///
    /// # Errors
    /// [`Error::Shape`] if the length is not a multiple of the number of
    /// labels (any non-empty chunk, with no labels); [`Error::InvalidConfig`]
    /// (`posteriors`) if a value is NaN or infinite. In both cases nothing is
    /// consumed and the state is unchanged.
    pub fn push(&mut self, posteriors: &[f32], events: &mut Vec<Event>) -> Result<()> {
        let n = self.n_labels;
        if n == 0 {
            if posteriors.is_empty() {
                return Ok(());
            }
            return Err(Error::Shape(format!(
                "{} posterior values for a decider with no labels",
                posteriors.len()
            )));
        }
        if !posteriors.len().is_multiple_of(n) {
            return Err(Error::Shape(format!(
                "{} posterior values is not a whole number of frames of {n} labels",
                posteriors.len()
            )));
        }
        if let Some(i) = posteriors.iter().position(|v| !v.is_finite()) {
            return Err(Error::config(
                "posteriors",
                format!(
                    "frame {} (of this chunk), label `{}`: {} is not a finite score",
                    i / n,
                    self.labels[i % n],
                    posteriors[i]
                ),
            ));
        }
        for row in posteriors.chunks_exact(n) {
            self.smooth(row);
            self.decide(events);
            self.frame += 1;
        }
        Ok(())
    }

    /// Adds one frame to the moving average and updates `smoothed`.
    fn smooth(&mut self, row: &[f32]) {
        let n = self.n_labels;
        let slot = &mut self.ring[self.pos * n..(self.pos + 1) * n];
        if self.filled == self.window {
            for (s, &old) in self.sums.iter_mut().zip(slot.iter()) {
                *s -= f64::from(old);
            }
        } else {
            self.filled += 1;
        }
        slot.copy_from_slice(row);
        for (s, &new) in self.sums.iter_mut().zip(row) {
            *s += f64::from(new);
        }
        self.pos += 1;
        if self.pos == self.window {
            // The ring is full and wraps: recompute the sums exactly, so
            // rounding error never outlives one window.
            self.pos = 0;
            self.sums.iter_mut().for_each(|s| *s = 0.0);
            for r in self.ring.chunks_exact(n) {
                for (s, &v) in self.sums.iter_mut().zip(r) {
                    *s += f64::from(v);
                }
            }
        }
        let count = self.filled as f64;
        for (m, &s) in self.smoothed.iter_mut().zip(&self.sums) {
            *m = (s / count) as f32;
        }
    }

    /// Runs every label's state machine on the current frame's smoothed scores.
    fn decide(&mut self, events: &mut Vec<Event>) {
        let i = self.frame;
        for j in 0..self.n_labels {
            if self.ignore[j] {
                continue;
            }
            let s = self.smoothed[j];
            let st = &mut self.states[j];
            match st.open {
                Some((start, max)) => {
                    if s >= self.on[j] {
                        st.quiet_since = None;
                    } else if s < self.off[j] && st.quiet_since.is_none() {
                        st.quiet_since = Some(i);
                    }
                    // The event ends on a frame below `off` once the quiet
                    // run has lasted `silence_frames` (Silero's VADIterator rule).
                    match st.quiet_since {
                        Some(end) if i - end >= self.silence_frames && s < self.off[j] => {
                            st.open = None;
                            st.quiet_since = None;
                            if end - start >= self.min_frames {
                                st.allowed_from = end.saturating_add(self.refractory_frames);
                                let (start_s, end_s) = self.span(start, end);
                                events.push(Event {
                                    label: self.labels[j].clone(),
                                    start_s,
                                    end_s,
                                    score: max,
                                });
                            }
                        }
                        _ if s > max => st.open = Some((start, s)),
                        _ => {}
                    }
                }
                None => {
                    if s >= self.on[j] && i >= st.allowed_from {
                        st.open = Some((i, s));
                    }
                }
            }
        }
    }

    /// End of stream: closes the open events at the time after the last
    /// frame (dropping those shorter than the minimum duration), appends
    /// them in label order, then [`reset`](Decider::reset)s.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        let end = self.frame;
        for j in 0..self.n_labels {
            // An open event (even one waiting out its silence) ends with the
            // stream, after the last frame, with no end padding: there is no
            // audio after it (as Silero's get_speech_timestamps does).
            if let Some((start, max)) = self.states[j].open
                && end - start >= self.min_frames
            {
                let (start_s, _) = self.span(start, end);
                events.push(Event {
                    label: self.labels[j].clone(),
                    start_s,
                    end_s: self.time_of(end),
                    score: max,
                });
            }
        }
        self.reset();
    }

    /// The stream's whole decision state (thresholds, smoothing history,
    /// open events, refractory periods, frame count): to move the stream.
    pub fn state(&self) -> DeciderState {
        DeciderState {
            on: self.on.clone(),
            off: self.off.clone(),
            ring: self.ring.clone(),
            pos: self.pos,
            filled: self.filled,
            sums: self.sums.clone(),
            smoothed: self.smoothed.clone(),
            states: self.states.clone(),
            frame: self.frame,
        }
    }

    /// Continues from a state [`Decider::state`] gave on a decider of the
    /// same labels and settings.
    ///
    /// # Errors
    /// [`Error::Shape`] if the sizes do not fit these labels and window.
    pub fn set_state(&mut self, st: &DeciderState) -> Result<()> {
        let n = self.n_labels;
        if st.on.len() != n
            || st.off.len() != n
            || st.ring.len() != self.ring.len()
            || st.sums.len() != n
            || st.smoothed.len() != n
            || st.states.len() != n
            || st.pos >= self.window
            || st.filled > self.window
        {
            return Err(Error::Shape(format!(
                "decision state does not fit {n} labels and a {}-frame window",
                self.window
            )));
        }
        self.on.clone_from(&st.on);
        self.off.clone_from(&st.off);
        self.cfg.on.clone_from(&st.on);
        self.cfg.off.clone_from(&st.off);
        self.ring.clone_from(&st.ring);
        self.sums.clone_from(&st.sums);
        self.smoothed.clone_from(&st.smoothed);
        self.states.clone_from(&st.states);
        (self.pos, self.filled, self.frame) = (st.pos, st.filled, st.frame);
        Ok(())
    }

    /// Forgets everything: open events are dropped, refractory periods and
    /// smoothing history cleared, the frame counter goes back to 0 and
    /// [`last_smoothed`](Decider::last_smoothed) to zeros. The next frame
    /// pushed is at `time_offset_s` again.
    pub fn reset(&mut self) {
        self.ring.iter_mut().for_each(|v| *v = 0.0);
        self.sums.iter_mut().for_each(|v| *v = 0.0);
        self.smoothed.iter_mut().for_each(|v| *v = 0.0);
        self.states
            .iter_mut()
            .for_each(|s| *s = LabelState::default());
        self.pos = 0;
        self.filled = 0;
        self.frame = 0;
    }

    /// Changes the per-label thresholds while the stream runs (a live
    /// display's slider). Values are clamped to [0, 1] and each `off` to at
    /// most its `on`; labels past the end of a slice keep theirs. From the
    /// next frame on, events start at the new `on` and open ones end at the
    /// new `off`.
    pub fn set_thresholds(&mut self, on: &[f32], off: &[f32]) {
        for i in 0..self.n_labels {
            if let Some(&v) = on.get(i) {
                self.on[i] = v.clamp(0.0, 1.0);
            }
            if let Some(&v) = off.get(i) {
                self.off[i] = v.clamp(0.0, 1.0);
            }
            self.off[i] = self.off[i].min(self.on[i]);
        }
        self.cfg.on.clone_from(&self.on);
        self.cfg.off.clone_from(&self.off);
    }

    /// Number of frames pushed since the last reset.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// The smoothed scores of the last frame pushed, one per label (zeros
    /// before the first frame), for live displays.
    pub fn last_smoothed(&self) -> &[f32] {
        &self.smoothed
    }

    /// The labels, in model output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The settings this decider was built with, as given to [`Decider::new`].
    pub fn config(&self) -> &DecisionConfig {
        &self.cfg
    }

    /// Start and end times of an event over frames `start..end`, padded by
    /// `pad_s` on both sides (the start clamped at 0).
    fn span(&self, start: u64, end: u64) -> (f64, f64) {
        let pad = self.cfg.pad_s;
        (
            (self.time_of(start) - pad).max(0.0),
            self.time_of(end) + pad,
        )
    }

    /// The events open now (begun, not yet ended), in label order: label
    /// index, start time (with the start padding, as the closed event will
    /// have it) and the highest smoothed score so far. For live displays;
    /// an open event may still be dropped as too short when it closes.
    pub fn open_events(&self) -> impl Iterator<Item = (usize, f64, f32)> + '_ {
        self.states.iter().enumerate().filter_map(|(j, st)| {
            st.open
                .map(|(start, max)| (j, self.span(start, self.frame).0, max))
        })
    }

    /// Seconds between frames.
    pub fn frame_period_s(&self) -> f64 {
        self.frame_period_s
    }

    /// Time of frame 0, seconds.
    pub fn time_offset_s(&self) -> f64 {
        self.time_offset_s
    }

    /// Time of frame `i` since the last reset: `time_offset_s + i * frame_period_s`.
    pub fn time_of(&self, i: u64) -> f64 {
        self.time_offset_s + i as f64 * self.frame_period_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn key_of(sec: &DecisionSection, l: &[String], period: f64) -> String {
        match DecisionConfig::from_section(sec, l, period) {
            Err(Error::InvalidConfig { name, .. }) => name,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    /// A live slider's new thresholds apply from the next frame: a score of
    /// 0.6 starts no event at 0.7, one at 0.5 after the change; values are
    /// clamped and `off` capped at `on`.
    #[test]
    fn thresholds_change_while_the_stream_runs() {
        let l = labels(&["a"]);
        let sec = DecisionSection {
            threshold: 0.7,
            ..Default::default()
        };
        let cfg = DecisionConfig::from_section(&sec, &l, 0.01).unwrap();
        let mut d = Decider::new(cfg, l, 0.01, 0.0);
        let mut ev = Vec::new();
        for _ in 0..10 {
            d.push(&[0.6], &mut ev).unwrap();
        }
        d.set_thresholds(&[0.5], &[0.9]);
        assert_eq!((d.config().on[0], d.config().off[0]), (0.5, 0.5));
        for _ in 0..10 {
            d.push(&[0.6], &mut ev).unwrap();
        }
        d.push(&[0.0], &mut ev).unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!((ev[0].start_s - 0.10).abs() < 1e-9, "{ev:?}");
        d.set_thresholds(&[1.7], &[-1.0]);
        assert_eq!((d.config().on[0], d.config().off[0]), (1.0, 0.0));
    }

    #[test]
    fn config_defaults_and_overrides() {
        let l = labels(&["a", "b", "c"]);
        let sec = DecisionSection {
            smoothing_s: 0.05,
            threshold: 0.6,
            thresholds: BTreeMap::from([("b".to_string(), 0.8)]),
            off_threshold: Some(0.4),
            min_duration_s: 0.1,
            refractory_s: 0.2,
            ignore: vec!["c".into()],
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let c = DecisionConfig::from_section(&sec, &l, 0.01).unwrap();
        assert_eq!(c.smoothing_frames, 5);
        assert_eq!(c.on, vec![0.6, 0.8, 0.6]);
        assert_eq!(c.off, vec![0.4, 0.4, 0.4]);
        assert_eq!(c.ignore, vec![false, false, true]);
        assert_eq!(c.min_duration_s, 0.1);
        assert_eq!(c.refractory_s, 0.2);

        // off defaults to each label's own on threshold; no smoothing → 1 frame.
        let sec = DecisionSection {
            thresholds: BTreeMap::from([("a".to_string(), 0.9)]),
            ..Default::default()
        };
        let c = DecisionConfig::from_section(&sec, &l, 0.01).unwrap();
        assert_eq!(c.smoothing_frames, 1);
        assert_eq!(c.on, vec![0.9, 0.5, 0.5]);
        assert_eq!(c.off, c.on);
        // A window under half a frame rounds to 1 frame.
        let sec = DecisionSection {
            smoothing_s: 0.004,
            ..Default::default()
        };
        let c = DecisionConfig::from_section(&sec, &l, 0.01).unwrap();
        assert_eq!(c.smoothing_frames, 1);
    }

    #[test]
    fn config_errors_name_the_key() {
        let l = labels(&["yes", "no"]);
        let d = DecisionSection::default;
        let thr = |k: &str, v: f64| BTreeMap::from([(k.to_string(), v)]);
        let cases: Vec<(DecisionSection, &str)> = vec![
            (
                DecisionSection {
                    threshold: 1.5,
                    ..d()
                },
                "decision.threshold",
            ),
            (
                DecisionSection {
                    threshold: f64::NAN,
                    ..d()
                },
                "decision.threshold",
            ),
            (
                DecisionSection {
                    off_threshold: Some(-0.1),
                    ..d()
                },
                "decision.off_threshold",
            ),
            (
                DecisionSection {
                    off_threshold: Some(0.7),
                    ..d()
                },
                "decision.off_threshold",
            ),
            (
                DecisionSection {
                    thresholds: thr("yes", 1.1),
                    ..d()
                },
                "decision.thresholds.yes",
            ),
            (
                DecisionSection {
                    thresholds: thr("maybe", 0.5),
                    ..d()
                },
                "decision.thresholds.maybe",
            ),
            (
                DecisionSection {
                    thresholds: thr("no", 0.2),
                    off_threshold: Some(0.3),
                    ..d()
                },
                "decision.thresholds.no",
            ),
            (
                DecisionSection {
                    ignore: vec!["maybe".into()],
                    min_silence_s: 0.0,
                    pad_s: 0.0,
                    ..d()
                },
                "decision.ignore",
            ),
            (
                DecisionSection {
                    smoothing_s: -0.1,
                    ..d()
                },
                "decision.smoothing_s",
            ),
            (
                DecisionSection {
                    smoothing_s: f64::INFINITY,
                    ..d()
                },
                "decision.smoothing_s",
            ),
            (
                DecisionSection {
                    smoothing_s: 1e9,
                    ..d()
                },
                "decision.smoothing_s",
            ),
            (
                DecisionSection {
                    min_duration_s: -1.0,
                    ..d()
                },
                "decision.min_duration_s",
            ),
            (
                DecisionSection {
                    refractory_s: f64::NAN,
                    ..d()
                },
                "decision.refractory_s",
            ),
        ];
        for (sec, key) in cases {
            assert_eq!(key_of(&sec, &l, 0.01), key, "{sec:?}");
        }
        assert_eq!(key_of(&d(), &l, 0.0), "frame_period_s");
        assert_eq!(key_of(&d(), &l, f64::NAN), "frame_period_s");
        assert_eq!(key_of(&d(), &[], 0.01), "labels");
        assert_eq!(key_of(&d(), &labels(&["a", "a"]), 0.01), "labels");
        // off == on is fine.
        let sec = DecisionSection {
            off_threshold: Some(0.5),
            ..d()
        };
        assert!(DecisionConfig::from_section(&sec, &l, 0.01).is_ok());
    }

    #[test]
    fn durations_to_frames() {
        assert_eq!(frames_at_least(0.0, 0.01), 0);
        assert_eq!(frames_at_least(-1.0, 0.01), 0);
        assert_eq!(frames_at_least(f64::NAN, 0.01), 0);
        // 0.05 / 0.01 = 5.000000000000001 in f64: still 5 frames.
        assert_eq!(frames_at_least(0.05, 0.01), 5);
        assert_eq!(frames_at_least(0.3, 0.01), 30);
        assert_eq!(frames_at_least(0.051, 0.01), 6);
        assert_eq!(frames_at_least(0.001, 0.01), 1);
        assert_eq!(frames_at_least(1.0, 0.0), u64::MAX);
    }

    /// The running sum is recomputed when the ring wraps: a huge value that
    /// has left the window leaves no trace. Without the recomputation the
    /// `f64` sum would lose the small values added next to 1e30 entirely.
    #[test]
    fn running_sum_is_recomputed_on_wrap() {
        let cfg = DecisionConfig {
            smoothing_frames: 4,
            on: vec![2.0],
            off: vec![2.0],
            min_duration_s: 0.0,
            refractory_s: 0.0,
            ignore: vec![false],
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let mut d = Decider::new(cfg, labels(&["a"]), 0.01, 0.0);
        let mut ev = Vec::new();
        d.push(&[1e30, 0.25, 0.25, 0.25], &mut ev).unwrap();
        d.push(&[0.25; 4], &mut ev).unwrap();
        assert_eq!(d.last_smoothed(), &[0.25]);
        d.push(&[0.5, 0.75], &mut ev).unwrap();
        assert_eq!(d.last_smoothed(), &[0.4375]);
        // The 1e30 frame made an event while it was in the window.
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].start_s, ev[0].end_s), (0.0, 0.04));
        assert_eq!(ev[0].score, 1e30); // frame 0 averages over itself alone
    }

    #[test]
    fn new_makes_a_hand_made_config_consistent() {
        let cfg = DecisionConfig {
            smoothing_frames: 0,
            on: vec![0.6],
            off: vec![0.9, 0.1, 0.1],
            min_duration_s: f64::NAN,
            refractory_s: -1.0,
            ignore: vec![],
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let d = Decider::new(cfg, labels(&["a", "b"]), 0.01, 0.0);
        assert_eq!(d.window, 1);
        assert_eq!(d.on, vec![0.6, 0.5]);
        assert_eq!(d.off, vec![0.6, 0.1]);
        assert_eq!(d.ignore, vec![false, false]);
        assert_eq!((d.min_frames, d.refractory_frames), (0, 0));
    }

    #[test]
    fn no_labels_does_not_panic() {
        let cfg = DecisionConfig {
            smoothing_frames: 3,
            on: vec![],
            off: vec![],
            min_duration_s: 0.0,
            refractory_s: 0.0,
            ignore: vec![],
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let mut d = Decider::new(cfg, Vec::new(), 0.01, 0.0);
        let mut ev = Vec::new();
        d.push(&[], &mut ev).unwrap();
        assert!(matches!(d.push(&[0.5], &mut ev), Err(Error::Shape(_))));
        d.finish(&mut ev);
        assert!(ev.is_empty());
        assert_eq!(d.frames(), 0);
    }
}
