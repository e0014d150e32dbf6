//! Your own keywords from a few recordings (`seqrec enroll`).
//!
//! A bundle with a frozen embedder (`models/kws`: speech_embedding, one
//! 96-d vector per 80 ms) already turns speech into vectors that are close
//! for the same word; a new word needs no training, only examples. From
//! each recording the word is found by its energy, and the embedding steps
//! whose windows hold most of it become one template (see
//! [`crate::sequence::templates`], which matches them live by dynamic time
//! warping).
//!
//! Each recording is enrolled with variants of itself (shifted by a third
//! and two thirds of a step, 0.88x and 1.12x speed, pink noise at 20 and 10
//! dB SNR): a word recorded once in a quiet room must match when said in
//! noise, a little faster, at any phase of the embedder's 80 ms steps.
//!
//! The threshold (the distance that scores 0.5) is [`SCALE`], lowered to
//! 0.9 x the closest distance any template comes to a stream of
//! keyword-free audio the bundle ships (`negatives.npy`: other speech,
//! noise), so that those never fire. Each recording is then matched
//! against the *other* recordings' templates (leave one out: how far a new
//! recording of the word lands) and the report says how many are found.

use std::path::Path;
use std::sync::Arc;

use crate::pipeline::{Output, Recognizer};
use crate::sequence::Stream;
use crate::sequence::templates::{TemplateModel, mean_std};
use crate::{Error, Result};

/// Silence added before a recording (seconds): the embedder's first window
/// ends 0.77 s into the audio, and the template's first step lies before
/// the word's end.
pub const PAD_BEFORE_S: f64 = 1.0;
/// Silence added after a recording (seconds).
pub const PAD_AFTER_S: f64 = 0.6;
/// Steps of the template end this long after the word (seconds).
const END_AFTER_S: f64 = 0.3;
/// The threshold distance when the shipped negatives allow it.
pub const SCALE: f32 = 0.30;
/// Steps per template: bounds.
const MIN_STEPS: usize = 6;
const MAX_STEPS: usize = 14;

/// One recording of the word (or a variant of one), embedded.
#[derive(Debug, Clone)]
pub struct Recording {
    /// A name for messages (the file).
    pub name: String,
    /// Which recording given it comes from (variants share it): leaving a
    /// recording out leaves all its variants out.
    pub source: usize,
    /// Embedding steps of the padded recording, `steps * dims`.
    pub embeddings: Vec<f32>,
    /// The word: start and end, seconds on the padded recording's clock.
    pub word: (f64, f64),
}

/// The variants of every recording that become templates too: a recording
/// made in a quiet room must still match the word said in noise, a little
/// faster or slower. `speeds` resample (tempo and pitch together, as a
/// tape would), `snr_db` add pink noise at that ratio to the word's power.
#[derive(Debug, Clone)]
pub struct Augment {
    /// Delays (seconds) of shifted copies: the embedder steps every 80 ms,
    /// and live audio meets the steps at any phase.
    pub shifts_s: Vec<f64>,
    /// Playback speeds of the resampled variants.
    pub speeds: Vec<f64>,
    /// Signal-to-noise ratios of the noisy variants, dB.
    pub snr_db: Vec<f32>,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            shifts_s: vec![0.027, 0.053],
            speeds: vec![0.88, 1.12],
            snr_db: vec![20.0, 10.0],
        }
    }
}

impl Augment {
    /// No variants: the recordings only.
    pub fn none() -> Self {
        Augment {
            shifts_s: Vec::new(),
            speeds: Vec::new(),
            snr_db: Vec::new(),
        }
    }
}

/// A small deterministic noise source (xorshift), values in [-0.5, 0.5).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    /// Pink noise (Paul Kellet's economy filter), unit-ish power.
    fn pink(&mut self, n: usize) -> Vec<f32> {
        let (mut b0, mut b1, mut b2) = (0f32, 0f32, 0f32);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                let w = self.next();
                b0 = 0.99765 * b0 + w * 0.099046;
                b1 = 0.96300 * b1 + w * 0.2965164;
                b2 = 0.57000 * b2 + w * 1.0526913;
                b0 + b1 + b2 + w * 0.1848
            })
            .collect();
        let p = v.iter().map(|x| x * x).sum::<f32>() / n.max(1) as f32;
        let k = 1.0 / p.max(1e-12).sqrt();
        v.into_iter().map(|x| x * k).collect()
    }
}

/// `x` played `speed` times faster (linear interpolation).
fn resample(x: &[f32], speed: f64) -> Vec<f32> {
    let n = ((x.len() as f64) / speed).floor() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 * speed;
            let j = t as usize;
            let f = (t - j as f64) as f32;
            let a = x[j.min(x.len() - 1)];
            let b = x[(j + 1).min(x.len() - 1)];
            a + f * (b - a)
        })
        .collect()
}

/// Embeds `samples` (at the bundle's rate) and its [`Augment`] variants
/// through `rec`'s front end and embedder, each padded with
/// [`PAD_BEFORE_S`] / [`PAD_AFTER_S`] of faint noise, and finds the word
/// (in the recording as given; the variants' spans follow from it).
/// `source`: the recording's position among those given.
///
/// # Errors
/// [`Error::Enroll`] when the audio holds no word (silent, or only a click)
/// or is too long to be one word; stage errors as [`StreamProcessor::push`](crate::pipeline::StreamProcessor::push).
pub fn record(
    rec: &Recognizer,
    name: &str,
    source: usize,
    keyword: &str,
    samples: &[f32],
    augment: &Augment,
) -> Result<Vec<Recording>> {
    let sr = rec.sample_rate() as f64;
    let bad = |reason: String| Error::Enroll {
        keyword: keyword.into(),
        reason: format!("{name}: {reason}"),
    };
    if rec.embedder().is_none() {
        return Err(bad(format!(
            "bundle {} has no [embedder]: templates need one (use models/kws)",
            rec.bundle().dir.display()
        )));
    }
    let (s, e) = word_span(samples, rec.sample_rate()).ok_or_else(|| {
        bad("no word found: the recording is silent or too quiet (peak below -45 dBFS)".into())
    })?;
    if e - s > 2.0 {
        return Err(bad(format!(
            "the sound lasts {:.1} s: record the word alone, with a little silence around it",
            e - s
        )));
    }
    let mut noise = Noise(0x2545_f491_4f6c_dd1d ^ source as u64);
    // the word's power, for the noisy variants
    let (a, b) = ((s * sr) as usize, ((e * sr) as usize).min(samples.len()));
    let word = &samples[a.min(b)..b];
    let power = word.iter().map(|v| v * v).sum::<f32>() / word.len().max(1) as f32;
    // (name, audio, speed, delay)
    let mut variants: Vec<(String, Vec<f32>, f64, f64)> =
        vec![(name.to_string(), samples.to_vec(), 1.0, 0.0)];
    for &shift in &augment.shifts_s {
        let mut y = vec![0.0; (shift * sr) as usize];
        y.extend_from_slice(samples);
        variants.push((format!("{name} +{:.0} ms", shift * 1e3), y, 1.0, shift));
    }
    for &speed in &augment.speeds {
        variants.push((
            format!("{name} x{speed}"),
            resample(samples, speed),
            speed,
            0.0,
        ));
    }
    for &snr in &augment.snr_db {
        let k = (power / 10f32.powf(snr / 10.0)).sqrt();
        let pink = noise.pink(samples.len());
        let y = samples.iter().zip(&pink).map(|(x, n)| x + k * n).collect();
        variants.push((format!("{name} +noise {snr} dB"), y, 1.0, 0.0));
    }
    let (before, after) = ((PAD_BEFORE_S * sr) as usize, (PAD_AFTER_S * sr) as usize);
    let mut proc = rec.stream()?;
    let mut out = Output {
        keep_embeddings: true,
        ..Output::default()
    };
    let mut recs = Vec::with_capacity(variants.len());
    for (vname, y, speed, delay) in variants {
        // faint noise, not digital zeros: a live microphone is never exactly 0
        let mut x = Vec::with_capacity(before + y.len() + after);
        x.extend((0..before).map(|_| noise.next() * 6e-4));
        x.extend_from_slice(&y);
        x.extend((0..after).map(|_| noise.next() * 6e-4));
        proc.reset();
        out.embeddings.clear();
        proc.push(&x, &mut out)?;
        proc.finish(&mut out)?;
        recs.push(Recording {
            name: vname,
            source,
            embeddings: std::mem::take(&mut out.embeddings),
            word: (
                s / speed + delay + PAD_BEFORE_S,
                e / speed + delay + PAD_BEFORE_S,
            ),
        });
    }
    Ok(recs)
}

/// Where the word is in `x`: start and end (seconds) of the loudest stretch
/// of sound, 20 ms frames within 30 dB of the peak and 12 dB above the
/// noise floor (gaps under 0.25 s bridged). `None` when the peak is below
/// -45 dBFS.
pub fn word_span(x: &[f32], rate: u32) -> Option<(f64, f64)> {
    let hop = (rate as usize / 100).max(1);
    let win = 2 * hop;
    let db: Vec<f32> = (0..x.len().saturating_sub(win) / hop + 1)
        .map(|i| {
            let f = &x[(i * hop).min(x.len())..(i * hop + win).min(x.len())];
            let ms = f.iter().map(|v| v * v).sum::<f32>() / f.len().max(1) as f32;
            10.0 * ms.max(1e-12).log10()
        })
        .collect();
    let (peak_i, &peak) = db.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    if peak < -45.0 {
        return None;
    }
    // within 30 dB of the peak, and 12 dB over the room's noise floor, so a
    // quiet word in a quiet room is not stretched over its silences
    let floor = noise_floor(&db);
    let thr = (peak - 30.0).max(floor + 12.0);
    let on = |i: usize| db[i] > thr;
    let gap = 25; // frames of 10 ms
    let (mut s, mut e) = (peak_i, peak_i);
    let mut quiet = 0;
    let mut i = peak_i;
    while i > 0 && quiet <= gap {
        i -= 1;
        if on(i) {
            s = i;
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    quiet = 0;
    i = peak_i;
    while i + 1 < db.len() && quiet <= gap {
        i += 1;
        if on(i) {
            e = i;
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    let t = |i: usize| (i * hop) as f64 / rate as f64;
    Some((t(s), t(e) + win as f64 / rate as f64))
}

/// The noise floor of a recording's 10 ms frame levels (dB): the median of
/// the frames outside its loudest second, where the word is. Not the
/// quietest frames: a synthesizer's digital silence, or a gap a recorder
/// gated, lies far below the room noise around it, and a floor taken there
/// lets that noise pass as part of the word. Recordings with under 0.3 s
/// outside the loudest second fall back to the quietest tenth.
fn noise_floor(db: &[f32]) -> f32 {
    const SECOND: usize = 100;
    let mut rest: Vec<f32> = if db.len() >= SECOND + 30 {
        let mut sum: f64 = db[..SECOND]
            .iter()
            .map(|&v| 10f64.powf(v as f64 / 10.0))
            .sum();
        let (mut best, mut best_i) = (sum, 0);
        for i in 1..=db.len() - SECOND {
            sum +=
                10f64.powf(db[i + SECOND - 1] as f64 / 10.0) - 10f64.powf(db[i - 1] as f64 / 10.0);
            if sum > best {
                (best, best_i) = (sum, i);
            }
        }
        db[..best_i]
            .iter()
            .chain(&db[best_i + SECOND..])
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    if rest.len() >= 30 {
        rest.sort_by(f32::total_cmp);
        rest[rest.len() / 2]
    } else {
        let mut sorted = db.to_vec();
        sorted.sort_by(f32::total_cmp);
        sorted[sorted.len() / 10]
    }
}

/// How one recording fared.
#[derive(Debug, Clone)]
pub struct RecordingReport {
    /// The recording (its file).
    pub name: String,
    /// The word's length, seconds.
    pub word_s: f64,
    /// Closest distance of this recording to the other recordings' templates.
    pub left_out: f32,
}

/// Templates, scale and what was measured.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Steps per template.
    pub steps: usize,
    /// Values per step.
    pub dims: usize,
    /// Templates: the recordings and their variants.
    pub n_templates: usize,
    /// `n_templates * steps * dims` values: the embeddings as they came.
    pub templates: Vec<f32>,
    /// Per dimension: mean and spread every step is standardized with.
    pub center: (Vec<f32>, Vec<f32>),
    /// The distance that scores 0.5.
    pub scale: f32,
    /// Per recording, in the order given.
    pub recordings: Vec<RecordingReport>,
    /// Closest distance any shipped negative came to a template, and the
    /// seconds of negatives (None without negatives).
    pub negatives: Option<(f32, f64)>,
    /// Recordings within the scale of the others' templates.
    pub left_out_hits: usize,
}

/// The distances, step by step, of a stream of `steps` (`T * dims`) to the
/// nearest of `templates`: `INFINITY` until the window is full.
fn distances(model: &Arc<TemplateModel>, steps: &[f32]) -> Result<Vec<f32>> {
    let mut s = model.stream();
    let mut out = Vec::new();
    let mut d = Vec::with_capacity(steps.len() / model.input_size().max(1));
    for step in steps.chunks_exact(model.input_size()) {
        out.clear();
        s.process(step, &mut out)?;
        d.push(s.last_distances()[1]);
    }
    Ok(d)
}

/// Makes the templates from `recs` (at least 2) and chooses the scale:
/// `period_s` / `offset_s` are the embedding steps' clock (step `j` at
/// `offset_s + j * period_s`); `negatives`: keyword-free embedding steps.
///
/// # Errors
/// [`Error::Enroll`] with fewer than 2 recordings or a word too close to the
/// start of its recording.
pub fn enroll(
    keyword: &str,
    recs: &[Recording],
    dims: usize,
    period_s: f64,
    offset_s: f64,
    negatives: Option<&[f32]>,
) -> Result<Enrollment> {
    let bad = |reason: String| Error::Enroll {
        keyword: keyword.into(),
        reason,
    };
    // the recordings given (variants share their recording's source)
    let mut sources: Vec<usize> = recs.iter().map(|r| r.source).collect();
    sources.sort_unstable();
    sources.dedup();
    if sources.len() < 2 {
        return Err(bad(format!(
            "{} recording(s): give at least 2 (3-5 is better) so that the threshold can be checked on a recording left out",
            sources.len()
        )));
    }
    let mut lens: Vec<f64> = recs.iter().map(|r| r.word.1 - r.word.0).collect();
    lens.sort_by(f64::total_cmp);
    let median = lens[lens.len() / 2];
    let k = (((median + 0.1) / period_s).round() as usize).clamp(MIN_STEPS, MAX_STEPS);
    let mut templates = Vec::with_capacity(recs.len() * k * dims);
    for r in recs {
        let steps = r.embeddings.len() / dims;
        // the first step at or after the word's end + END_AFTER_S
        let last = ((r.word.1 + END_AFTER_S - offset_s) / period_s)
            .ceil()
            .max(0.0) as usize;
        let last = last.min(steps.saturating_sub(1));
        if last + 1 < k {
            return Err(bad(format!(
                "{}: the word ends {:.2} s into the recording, too early to cut {k} steps",
                r.name, r.word.1
            )));
        }
        templates.extend_from_slice(&r.embeddings[(last + 1 - k) * dims..(last + 1) * dims]);
    }
    // standardize with the keyword-free audio's statistics (or, without
    // it, the recordings' own, silence included)
    let center = match negatives {
        Some(n) if n.len() >= 2 * dims => mean_std(n, dims),
        _ => {
            let all: Vec<f32> = recs
                .iter()
                .flat_map(|r| r.embeddings.iter().copied())
                .collect();
            mean_std(&all, dims)
        }
    };
    let one = |ts: Vec<f32>, n: usize| {
        TemplateModel::new(
            ts,
            k,
            dims,
            vec![1; n],
            vec![0.0, 1.0],
            Some(center.clone()),
        )
        .map(Arc::new)
    };
    let mut reports = Vec::with_capacity(sources.len());
    for &src in &sources {
        // the recording as given: the first of its source (variants follow it)
        let Some(r) = recs.iter().find(|r| r.source == src) else {
            continue;
        };
        let others: Vec<f32> = templates
            .chunks_exact(k * dims)
            .zip(recs)
            .filter(|(_, o)| o.source != src)
            .flat_map(|(t, _)| t.iter().copied())
            .collect();
        // at least one other source: there are two or more
        let n_others = recs.iter().filter(|o| o.source != src).count();
        let m = one(others, n_others)?;
        let d = distances(&m, &r.embeddings)?;
        reports.push(RecordingReport {
            name: r.name.clone(),
            word_s: r.word.1 - r.word.0,
            left_out: d.into_iter().fold(f32::INFINITY, f32::min),
        });
    }
    let all = one(templates.clone(), recs.len())?;
    let negatives = match negatives {
        Some(n) if n.len() >= k * dims => {
            let closest = distances(&all, n)?
                .into_iter()
                .fold(f32::INFINITY, f32::min);
            Some((closest, (n.len() / dims) as f64 * period_s))
        }
        _ => None,
    };
    // A fixed distance, lowered where the shipped negatives come closer
    // (chosen on the dev voices of scripts/kws/enroll_eval.py: 0.9 x the
    // closest negative alone gave 3 false alarms per hour, the midpoint
    // between recordings and negatives missed words whose recordings are
    // alike; this rule had neither)
    let scale = match negatives {
        Some((closest, _)) => SCALE.min(0.9 * closest),
        None => SCALE,
    };
    let left_out_hits = reports.iter().filter(|r| r.left_out < scale).count();
    Ok(Enrollment {
        steps: k,
        dims,
        n_templates: recs.len(),
        templates,
        center,
        scale,
        recordings: reports,
        negatives,
        left_out_hits,
    })
}

/// Embeds and enrolls in one go: `recordings` are `(name, samples at the
/// bundle's rate)`, each one also enrolled as its `augment` variants.
///
/// # Errors
/// As [`record`] and [`enroll`].
pub fn enroll_recordings(
    rec: &Recognizer,
    keyword: &str,
    recordings: &[(String, Vec<f32>)],
    augment: &Augment,
    negatives: Option<&[f32]>,
) -> Result<Enrollment> {
    let mut recs = Vec::new();
    for (i, (n, x)) in recordings.iter().enumerate() {
        recs.extend(record(rec, n, i, keyword, x, augment)?);
    }
    let dims = rec.embedder().map_or(0, |e| e.output_size());
    enroll(
        keyword,
        &recs,
        dims,
        rec.frame_period_s(),
        rec.time_offset_s(),
        negatives,
    )
}

/// Reads `[steps, dims]` negatives from a .npy file.
///
/// # Errors
/// [`Error::Npy`]/[`Error::Io`] for an unreadable file, [`Error::Shape`] when
/// its rows are not `dims` long.
pub fn read_negatives(path: &Path, dims: usize) -> Result<Vec<f32>> {
    let a = crate::npy::read_f32(path)?;
    if a.shape.len() != 2 || a.shape[1] != dims {
        return Err(Error::Shape(format!(
            "{}: negatives are [steps, {dims}]; this array is {:?}",
            path.display(),
            a.shape
        )));
    }
    Ok(a.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word is found between its silences, a near-silent clip is refused.
    #[test]
    fn the_word_is_where_the_sound_is() {
        let sr = 16000;
        let mut x = vec![0.0f32; 2 * sr];
        for (i, v) in x[8000..16000].iter_mut().enumerate() {
            *v = 0.3 * (i as f32 * 0.05).sin();
        }
        let (s, e) = word_span(&x, sr as u32).unwrap();
        assert!((s - 0.5).abs() < 0.03 && (e - 1.0).abs() < 0.03, "{s} {e}");
        let quiet: Vec<f32> = x.iter().map(|v| v * 1e-3).collect();
        assert!(word_span(&quiet, sr as u32).is_none());
        // a synthesizer's word: digital silence around it, inside room noise
        // 26 dB under the word (fixtures/clips/enroll/banana_enroll_1.wav
        // is such a recording: 1.27 s were found there before, not 0.4)
        let mut seed = 1u32;
        let mut noisy: Vec<f32> = (0..3 * sr)
            .map(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                0.025 * ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            })
            .collect();
        noisy[16000..32000].iter_mut().for_each(|v| *v = 0.0);
        for (i, v) in noisy[22000..28000].iter_mut().enumerate() {
            *v = 0.2 * (i as f32 * 0.05).sin();
        }
        let (s, e) = word_span(&noisy, sr as u32).unwrap();
        assert!(
            (s - 1.375).abs() < 0.03 && (e - 1.75).abs() < 0.03,
            "{s} {e}"
        );
    }
}
