//! Keyword templates as a sequence stage: the few-shot keywords that
//! `seqrec enroll` makes from a handful of recordings.
//!
//! A template is `K` consecutive embeddings (e.g. speech_embedding's 96-d
//! vectors, one per 80 ms) cut from one recording of a word. Every step is
//! first standardized (minus a mean, over a spread per dimension, both
//! measured on keyword-free audio: raw speech embeddings share one large
//! common direction, so that raw cosines of any two steps are 0.6-0.98) and
//! scaled to unit length. A stream keeps
//! the last `K` embeddings it was given (its state, carried across chunks
//! and reset at discontinuities) and at every step aligns that window with
//! each template by dynamic time warping, so a word said a little faster or
//! slower still lines up. The distance is the mean cosine distance along the
//! best path (0 = identical directions, 2 = opposite). Each output label
//! scores `1 / (1 + (d / scale)^4)` for its closest template: 0.5 at its
//! `scale`, near 1 well inside it, near 0 well outside. Output 0 is the
//! background, `1 - max` of the others, so the decision stage and its
//! thresholds work on it as on a recurrent head's posteriors.
//!
//! Cost per step: templates x K^2 x D multiply-adds (K = 10, D = 96: ~10k
//! per template), no allocation.

use std::path::Path;
use std::sync::Arc;

use super::{State, StateTensor, Stream};
use crate::{Error, Result};

/// Templates and their scales: shared, immutable.
#[derive(Debug, Clone)]
pub struct TemplateModel {
    /// Steps per template.
    k: usize,
    /// Values per step.
    d: usize,
    /// `n * k * d` values, every row of unit length.
    templates: Vec<f32>,
    /// Output index (>= 1) of each template.
    owner: Vec<usize>,
    /// Per output: the distance that scores 0.5 (index 0 unused).
    scales: Vec<f32>,
    /// Per dimension: mean and 1 / spread, applied before the unit length.
    center: Option<(Vec<f32>, Vec<f32>)>,
}

/// Per-dimension mean and spread of `x` (`T * d` values), for
/// [`TemplateModel::new`]'s `center` (a spread of 0 becomes 1).
pub fn mean_std(x: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / d.max(1)).max(1) as f64;
    let mut mean = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (j, &v) in row.iter().enumerate() {
            mean[j] += f64::from(v);
            sq[j] += f64::from(v) * f64::from(v);
        }
    }
    let m: Vec<f32> = mean.iter().map(|s| (s / n) as f32).collect();
    let sd = sq
        .iter()
        .zip(&mean)
        .map(|(q, s)| {
            let var = (q / n - (s / n) * (s / n)).max(0.0);
            if var > 1e-12 { var.sqrt() as f32 } else { 1.0 }
        })
        .collect();
    (m, sd)
}

/// Scales every `d`-value row of `x` to unit length (rows of zeros stay).
pub fn normalize_rows(x: &mut [f32], d: usize) {
    for row in x.chunks_exact_mut(d) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// The Sakoe-Chiba band of the alignment: a step may drift a third of
/// the window from the diagonal.
fn band(k: usize) -> usize {
    k.div_ceil(3).max(1)
}

/// Dynamic-time-warping distance between two windows of `k` unit rows of
/// `d` values (`a`, `b`: `k * d` each): the symmetric Sakoe-Chiba form
/// (diagonal moves count twice) inside a band of `k/3`, divided by `2k`,
/// so it is the mean cosine distance along the best path. `cost` is
/// scratch space of at least `k * k` values.
pub fn dtw(a: &[f32], b: &[f32], k: usize, d: usize, cost: &mut [f32]) -> f32 {
    debug_assert!(a.len() >= k * d && b.len() >= k * d && cost.len() >= k * k);
    let w = band(k);
    let dist = |i: usize, j: usize| {
        let (x, y) = (&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]);
        1.0 - x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()
    };
    for i in 0..k {
        for j in 0..k {
            let at = i * k + j;
            if i.abs_diff(j) > w {
                cost[at] = f32::INFINITY;
                continue;
            }
            let c = dist(i, j);
            cost[at] = match (i, j) {
                (0, 0) => 2.0 * c,
                (0, _) => cost[at - 1] + c,
                (_, 0) => cost[at - k] + c,
                _ => (cost[at - k - 1] + 2.0 * c)
                    .min(cost[at - k] + c)
                    .min(cost[at - 1] + c),
            };
        }
    }
    cost[k * k - 1] / (2 * k) as f32
}

/// The score of distance `d` for a label of scale `scale`.
pub fn score(d: f32, scale: f32) -> f32 {
    let r = d / scale.max(1e-6);
    1.0 / (1.0 + r * r * r * r)
}

impl TemplateModel {
    /// `templates`: `n * k * d` embedding values (standardized and
    /// normalized here); `owner[t]`: the output (1..=labels-1) of template
    /// `t`; `scales[o]`: the distance scoring 0.5 for output `o`
    /// (`scales[0]`, the background's, unused); `center`: per-dimension mean
    /// and spread to standardize every step with (see [`mean_std`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when the sizes do not fit together, an owner is out
    /// of range, or a scale is not positive.
    pub fn new(
        mut templates: Vec<f32>,
        k: usize,
        d: usize,
        owner: Vec<usize>,
        scales: Vec<f32>,
        center: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<TemplateModel> {
        let n = owner.len();
        if k == 0 || d == 0 || n == 0 || templates.len() != n * k * d {
            return Err(Error::Shape(format!(
                "{} template values for {n} templates of {k} steps x {d}",
                templates.len()
            )));
        }
        if scales.len() < 2 {
            return Err(Error::Shape(
                "templates need a background and at least one label".into(),
            ));
        }
        if let Some(o) = owner.iter().find(|&&o| o == 0 || o >= scales.len()) {
            return Err(Error::Shape(format!(
                "a template belongs to output {o}; outputs 1..{} are labels",
                scales.len() - 1
            )));
        }
        if let Some(s) = scales[1..].iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            return Err(Error::Shape(format!("template scale {s} is not positive")));
        }
        let center = match center {
            Some((m, sd)) if m.len() == d && sd.len() == d => {
                if let Some(v) = sd.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
                    return Err(Error::Shape(format!("template spread {v} is not positive")));
                }
                Some((m, sd.iter().map(|v| 1.0 / v).collect()))
            }
            Some((m, sd)) => {
                return Err(Error::Shape(format!(
                    "template center of {} / {} values for {d}-value steps",
                    m.len(),
                    sd.len()
                )));
            }
            None => None,
        };
        let mut m = TemplateModel {
            k,
            d,
            templates: Vec::new(),
            owner,
            scales,
            center,
        };
        for row in templates.chunks_exact_mut(d) {
            m.prepare(row);
        }
        m.templates = templates;
        Ok(m)
    }

    /// Standardizes (with `center`) and normalizes one step in place.
    pub fn prepare(&self, row: &mut [f32]) {
        if let Some((mean, inv)) = &self.center {
            for ((v, m), i) in row.iter_mut().zip(mean).zip(inv) {
                *v = (*v - m) * i;
            }
        }
        normalize_rows(row, self.d);
    }

    /// Reads `[n, k, d]` templates from a .npy file and, if given, the
    /// `[2, d]` mean and spread from `center` (see [`TemplateModel::new`]).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Npy`] for an unreadable file, [`Error::Shape`]
    /// when it is not 3-D or does not fit `owner`, `scales` or `center`.
    pub fn load(
        path: &Path,
        center: Option<&Path>,
        owner: Vec<usize>,
        scales: Vec<f32>,
    ) -> Result<TemplateModel> {
        let a = crate::npy::read_f32(path)?;
        let &[n, k, d] = a.shape.as_slice() else {
            return Err(Error::Shape(format!(
                "{}: templates are [templates, steps, dims]; this array is {:?}",
                path.display(),
                a.shape
            )));
        };
        if n != owner.len() {
            return Err(Error::Shape(format!(
                "{}: {n} templates, but {} owners are given",
                path.display(),
                owner.len()
            )));
        }
        let center = match center {
            Some(p) => {
                let c = crate::npy::read_f32(p)?;
                if c.shape != [2, d] {
                    return Err(Error::Shape(format!(
                        "{}: the center is [2, {d}] (mean; spread); this array is {:?}",
                        p.display(),
                        c.shape
                    )));
                }
                Some((c.data[..d].to_vec(), c.data[d..].to_vec()))
            }
            None => None,
        };
        Self::new(a.data, k, d, owner, scales, center)
    }

    /// Steps per template (the window a stream keeps).
    pub fn steps(&self) -> usize {
        self.k
    }

    /// Values per input step.
    pub fn input_size(&self) -> usize {
        self.d
    }

    /// Outputs per step: the background and the labels.
    pub fn output_size(&self) -> usize {
        self.scales.len()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// Whether there are no templates (never, for a model that loaded).
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Template `t`'s `k * d` unit rows.
    pub fn template(&self, t: usize) -> &[f32] {
        let n = self.k * self.d;
        &self.templates[t * n..(t + 1) * n]
    }

    /// A stream in the initial state (an empty window).
    pub fn stream(self: &Arc<Self>) -> TemplateStream {
        TemplateStream {
            ring: vec![0.0; self.k * self.d],
            window: vec![0.0; self.k * self.d],
            cost: vec![0.0; self.k * self.k],
            best: vec![f32::INFINITY; self.scales.len()],
            pos: 0,
            filled: 0,
            model: self.clone(),
        }
    }
}

/// One stream through a [`TemplateModel`]: owns its window of steps.
#[derive(Debug)]
pub struct TemplateStream {
    model: Arc<TemplateModel>,
    /// The last `k` normalized steps; row `pos` is the oldest once full.
    ring: Vec<f32>,
    pos: usize,
    filled: usize,
    /// Scratch: the window oldest first, the DTW table, per-output minima.
    window: Vec<f32>,
    cost: Vec<f32>,
    best: Vec<f32>,
}

impl TemplateStream {
    /// The smallest distance per output at the last step (`INFINITY` before
    /// the window is full; index 0 unused): for calibration and tests.
    pub fn last_distances(&self) -> &[f32] {
        &self.best
    }
}

impl Stream for TemplateStream {
    fn input_size(&self) -> usize {
        self.model.d
    }

    fn output_size(&self) -> usize {
        self.model.scales.len()
    }

    fn process(&mut self, frames: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let (k, d) = (self.model.k, self.model.d);
        if !frames.len().is_multiple_of(d) {
            return Err(Error::Shape(format!(
                "{} values is not a whole number of {d}-value steps",
                frames.len()
            )));
        }
        for step in frames.chunks_exact(d) {
            let row = &mut self.ring[self.pos * d..(self.pos + 1) * d];
            row.copy_from_slice(step);
            self.model.prepare(row);
            self.pos = (self.pos + 1) % k;
            self.filled = (self.filled + 1).min(k);
            self.best.iter_mut().for_each(|b| *b = f32::INFINITY);
            let n_out = self.model.scales.len();
            if self.filled < k {
                out.push(1.0);
                out.extend(std::iter::repeat_n(0.0, n_out - 1));
                continue;
            }
            // oldest first: rows pos..k, then 0..pos
            let split = self.pos * d;
            let tail = k * d - split;
            self.window[..tail].copy_from_slice(&self.ring[split..]);
            self.window[tail..].copy_from_slice(&self.ring[..split]);
            for (t, &o) in self.model.owner.iter().enumerate() {
                let dist = dtw(&self.window, self.model.template(t), k, d, &mut self.cost);
                self.best[o] = self.best[o].min(dist);
            }
            let start = out.len();
            out.push(0.0);
            let mut top = 0f32;
            for o in 1..n_out {
                let s = score(self.best[o], self.model.scales[o]);
                top = top.max(s);
                out.push(s);
            }
            out[start] = 1.0 - top;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.ring.iter_mut().for_each(|v| *v = 0.0);
        self.pos = 0;
        self.filled = 0;
        self.best.iter_mut().for_each(|b| *b = f32::INFINITY);
    }

    fn snapshot(&self) -> State {
        let (k, d) = (self.model.k, self.model.d);
        let split = self.pos * d;
        let mut window = self.ring[split..].to_vec();
        window.extend_from_slice(&self.ring[..split]);
        State {
            tensors: vec![
                StateTensor {
                    input: "window".into(),
                    output: "window".into(),
                    shape: vec![k, d],
                    data: window,
                },
                StateTensor {
                    input: "filled".into(),
                    output: "filled".into(),
                    shape: vec![1],
                    data: vec![self.filled as f32],
                },
            ],
        }
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        let (k, d) = (self.model.k, self.model.d);
        let [w, f] = state.tensors.as_slice() else {
            return Err(Error::Shape(format!(
                "a template stream's state is 2 tensors (window, filled); got {}",
                state.tensors.len()
            )));
        };
        if w.shape != [k, d] || f.data.len() != 1 {
            return Err(Error::Shape(format!(
                "template state {:?} / {:?} does not fit a window of {k} x {d}",
                w.shape, f.shape
            )));
        }
        self.ring.copy_from_slice(&w.data);
        self.pos = 0;
        self.filled = (f.data[0].max(0.0) as usize).min(k);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    }

    /// DTW of a window with itself is 0; with a copy stretched in time it
    /// stays well below an unrelated window's distance; a plain frame-by-
    /// frame mean cosine distance is an upper bound of it.
    #[test]
    fn dtw_aligns_a_stretched_copy() {
        let (k, d) = (10, 8);
        let mut s = 7u64;
        let mut a: Vec<f32> = (0..k * d).map(|_| rng(&mut s)).collect();
        normalize_rows(&mut a, d);
        let mut cost = vec![0.0; k * k];
        assert!(dtw(&a, &a, k, d, &mut cost).abs() < 1e-6);
        // b: a's rows 0,0,1,2,...,8 (one step late)
        let mut b = a[..d].to_vec();
        b.extend_from_slice(&a[..(k - 1) * d]);
        let mut c: Vec<f32> = (0..k * d).map(|_| rng(&mut s)).collect();
        normalize_rows(&mut c, d);
        let (ab, ac) = (dtw(&a, &b, k, d, &mut cost), dtw(&a, &c, k, d, &mut cost));
        let plain = (0..k)
            .map(|i| {
                1.0 - a[i * d..(i + 1) * d]
                    .iter()
                    .zip(&b[i * d..(i + 1) * d])
                    .map(|(p, q)| p * q)
                    .sum::<f32>()
            })
            .sum::<f32>()
            / k as f32;
        assert!(ab < 0.2 * plain, "{ab} vs plain {plain}");
        assert!(ab < 0.2 * ac, "{ab} vs unrelated {ac}");
    }

    /// A stream scores a template's own steps at 1 once its window is full,
    /// the same whatever the chunking, and a snapshot restored into a new
    /// stream continues exactly.
    #[test]
    fn a_stream_finds_its_template_in_any_chunking() {
        let (k, d) = (4, 3);
        let mut s = 3u64;
        let noise: Vec<f32> = (0..20 * d).map(|_| rng(&mut s)).collect();
        let word: Vec<f32> = (0..k * d).map(|_| rng(&mut s)).collect();
        let mut input = noise[..10 * d].to_vec();
        input.extend_from_slice(&word);
        input.extend_from_slice(&noise[10 * d..]);
        let m = Arc::new(
            TemplateModel::new(word.clone(), k, d, vec![1], vec![0.0, 0.1], None).unwrap(),
        );
        let mut whole = Vec::new();
        m.stream().process(&input, &mut whole).unwrap();
        let at = (10 + k - 1) * 2; // the step where the window is the word
        assert!((whole[at + 1] - 1.0).abs() < 1e-5 && whole[at].abs() < 1e-5);
        assert_eq!(&whole[..2], &[1.0, 0.0], "window not full yet");
        let mut st = m.stream();
        let mut parts = Vec::new();
        for c in input.chunks(5 * d) {
            st.process(c, &mut parts).unwrap();
        }
        assert_eq!(whole, parts);
        let mut a = m.stream();
        let mut first = Vec::new();
        a.process(&input[..12 * d], &mut first).unwrap();
        let mut b = m.stream();
        b.restore(&a.snapshot()).unwrap();
        b.process(&input[12 * d..], &mut first).unwrap();
        assert_eq!(whole, first);
        a.reset();
        let mut again = Vec::new();
        a.process(&input, &mut again).unwrap();
        assert_eq!(whole, again);
        assert!(a.process(&input[..d + 1], &mut again).is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(TemplateModel::new(vec![0.0; 5], 2, 3, vec![1], vec![0.0, 0.3], None).is_err());
        assert!(TemplateModel::new(vec![1.0; 6], 2, 3, vec![2], vec![0.0, 0.3], None).is_err());
        assert!(TemplateModel::new(vec![1.0; 6], 2, 3, vec![1], vec![0.0, -1.0], None).is_err());
        assert!(TemplateModel::new(vec![1.0; 6], 2, 3, vec![1], vec![0.0, 0.3], None).is_ok());
    }
}
