//! The video "features" stage: RGB24 frames -> model input tensors, and frame-rate decimation.
//!
//! What [`Preprocessor::process`] computes is defined by the numpy reference
//! `scripts/video/preprocess.py` (train with it, and seqrec feeds the model the same numbers):
//!
//! 1. **Geometry.** `resize = "crop"` (default) scales the frame so that it covers the target
//!    (the limiting side to exactly the target, the other to `round(side * scale)`, halves up,
//!    never below the target) and keeps the centre, offset `(resized - target) / 2` (floor); for
//!    a square target that is "shorter side = target, centre crop". `"stretch"` scales each axis
//!    to the target independently.
//! 2. **Resampling**: a separable, antialiased triangle (bilinear) filter with PIL's convention:
//!    per axis `scale = in / resized`, support `max(1, scale)`, output pixel `i` centred at
//!    `(i + 0.5) * scale`, weights `tri((x - centre + 0.5) / max(1, scale))` normalised to sum 1.
//!    Horizontal pass then vertical, in `f32` straight from the `u8` pixels, no intermediate
//!    rounding (PIL rounds to `u8` after each pass, so PIL's own output differs by up to 1).
//!    Only pixels inside the crop are computed.
//! 3. `channels = "bgr"` swaps red and blue.
//! 4. `(v - mean[c]) / std[c]`, `v` in 0..255 units, `c` the *output* channel.
//! 5. `layout = "nchw"` writes `[3, height, width]`, `"nhwc"` `[height, width, 3]`.
//!
//! Filter weights are computed once per input size; processing frames of one size allocates
//! nothing after the first.
//!
//! [`Decimator`] drops frames to honour `every` (keep every k-th frame) and `fps` (at most that
//! many frames per second of source time); kept frames keep their source timestamps.

use serde::{Deserialize, Serialize};

use crate::source::video::Frame;
use crate::{Error, Result};

/// How a frame is fitted to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale to cover the target keeping the aspect ratio, then cut the centre.
    #[default]
    Crop,
    /// Scale each axis to the target (distorts the aspect ratio).
    Stretch,
}

/// Channel order of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (OpenCV/Caffe models).
    Bgr,
}

/// Memory layout of the model input (per frame; the batch axis is the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[channels, height, width]` (PyTorch).
    #[default]
    Nchw,
    /// `[height, width, channels]` (TensorFlow).
    Nhwc,
}

/// Largest model input side accepted.
pub const MAX_INPUT_SIDE: u32 = 4096;

/// How frames become model inputs (the `[video]` table of a bundle manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    /// Model input width in pixels.
    pub width: u32,
    /// Model input height in pixels.
    pub height: u32,
    /// How frames are fitted to `width` x `height` (default `crop`).
    #[serde(default)]
    pub resize: ResizeMode,
    /// Subtracted per output channel, in 0..255 units (default 0).
    #[serde(default)]
    pub mean: [f32; 3],
    /// Divisor per output channel, in 0..255 units (default 1). ImageNet: mean
    /// `[123.675, 116.28, 103.53]`, std `[58.395, 57.12, 57.375]`.
    #[serde(default = "ones")]
    pub std: [f32; 3],
    /// Channel order (default `rgb`).
    #[serde(default)]
    pub channels: ChannelOrder,
    /// Tensor layout (default `nchw`).
    #[serde(default)]
    pub layout: Layout,
    /// Target rate: keep at most this many frames per second of source time.
    #[serde(default)]
    pub fps: Option<f64>,
    /// Keep every k-th frame (1 keeps all).
    #[serde(default)]
    pub every: Option<u32>,
}

fn ones() -> [f32; 3] {
    [1.0; 3]
}

impl Default for VideoConfig {
    /// 224x224, centre crop, no normalisation, RGB, NCHW, every frame.
    fn default() -> Self {
        Self {
            width: 224,
            height: 224,
            resize: ResizeMode::Crop,
            mean: [0.0; 3],
            std: [1.0; 3],
            channels: ChannelOrder::Rgb,
            layout: Layout::Nchw,
            fps: None,
            every: None,
        }
    }
}

impl VideoConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting (`video.width`, `video.std`, ...).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("video.width", self.width), ("video.height", self.height)] {
            if v == 0 || v > MAX_INPUT_SIDE {
                return Err(Error::config(
                    name,
                    format!("{v} is not in 1..={MAX_INPUT_SIDE}"),
                ));
            }
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::config("video.mean", format!("{m} is not finite")));
        }
        if let Some(s) = self.std.iter().find(|s| !s.is_finite() || **s == 0.0) {
            return Err(Error::config(
                "video.std",
                format!("{s} is not a finite non-zero number"),
            ));
        }
        if let Some(f) = self.fps
            && !(f.is_finite() && f > 0.0)
        {
            return Err(Error::config("video.fps", format!("{f} is not > 0")));
        }
        if self.every == Some(0) {
            return Err(Error::config("video.every", "0 is not >= 1"));
        }
        Ok(())
    }

    /// Values per frame: `3 * width * height`.
    pub fn tensor_len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }

    /// The per-frame tensor shape: `[3, height, width]` or `[height, width, 3]`.
    pub fn shape(&self) -> [usize; 3] {
        let (h, w) = (self.height as usize, self.width as usize);
        match self.layout {
            Layout::Nchw => [3, h, w],
            Layout::Nhwc => [h, w, 3],
        }
    }
}

/// `(resized_w, resized_h, left, top)` of the resize and centre crop of an `in_w` x `in_h`
/// frame (the same as `resized_geometry` in `scripts/video/preprocess.py`).
pub fn resized_geometry(
    in_w: u32,
    in_h: u32,
    width: u32,
    height: u32,
    resize: ResizeMode,
) -> (u32, u32, u32, u32) {
    match resize {
        ResizeMode::Stretch => (width, height, 0, 0),
        ResizeMode::Crop => {
            let (rw, rh) =
                if u64::from(width) * u64::from(in_h) >= u64::from(height) * u64::from(in_w) {
                    let rh = (f64::from(in_h) * f64::from(width) / f64::from(in_w) + 0.5).floor();
                    (width, (rh as u32).max(height))
                } else {
                    let rw = (f64::from(in_w) * f64::from(height) / f64::from(in_h) + 0.5).floor();
                    ((rw as u32).max(width), height)
                };
            (rw, rh, (rw - width) / 2, (rh - height) / 2)
        }
    }
}

/// Filter taps of one axis: output pixel `o` reads inputs `start[o] .. start[o] + len[o]` with
/// weights `weights[o * taps ..]`.
#[derive(Debug, Clone)]
struct Axis {
    start: Vec<usize>,
    len: Vec<usize>,
    taps: usize,
    weights: Vec<f32>,
}

impl Axis {
    /// PIL's antialiased bilinear weights for outputs `first .. first + count` of a resize
    /// `in_size -> out_size`.
    fn new(in_size: u32, out_size: u32, first: u32, count: u32) -> Self {
        let scale = f64::from(in_size) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = filterscale;
        let taps = (support * 2.0).ceil() as usize + 2;
        let mut axis = Axis {
            start: Vec::with_capacity(count as usize),
            len: Vec::with_capacity(count as usize),
            taps,
            weights: vec![0.0; taps * count as usize],
        };
        let mut w = vec![0.0f64; taps];
        for (k, i) in (first..first + count).enumerate() {
            let centre = (f64::from(i) + 0.5) * scale;
            // `as` truncates toward zero, like Python's int().
            let xmin = ((centre - support + 0.5) as i64).max(0) as usize;
            let xmax = ((centre + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let n = xmax.saturating_sub(xmin).min(taps);
            let mut total = 0.0;
            for (j, wj) in w.iter_mut().enumerate().take(n) {
                let t = ((xmin + j) as f64 - centre + 0.5) / filterscale;
                *wj = (1.0 - t.abs()).max(0.0);
                total += *wj;
            }
            let total = if total != 0.0 { total } else { 1.0 };
            for (dst, wj) in axis.weights[k * taps..k * taps + n].iter_mut().zip(&w) {
                *dst = (wj / total) as f32;
            }
            axis.start.push(xmin);
            axis.len.push(n);
        }
        axis
    }

    /// Refills `self` with the weights of a resample of the source span `[origin, origin +
    /// extent)` (pixels, may reach past `0 .. in_size`) to `out_size` pixels: output `o` centred
    /// at `origin + (o + 0.5) * scale`, the same triangle as [`Axis::new`], normalised over every
    /// tap, then the taps outside the frame dropped (zero padding: black outside). Reuses the
    /// buffers: no allocation once they have grown.
    fn set_region(&mut self, in_size: u32, origin: f64, extent: f64, out_size: u32) {
        let scale = extent / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = filterscale;
        self.taps = (support * 2.0).ceil() as usize + 2;
        self.start.clear();
        self.len.clear();
        self.weights.clear();
        self.weights.resize(self.taps * out_size as usize, 0.0);
        let tri = |x: i64, centre: f64| {
            let t = (x as f64 - centre + 0.5) / filterscale;
            (1.0 - t.abs()).max(0.0)
        };
        for o in 0..out_size as usize {
            let centre = origin + (o as f64 + 0.5) * scale;
            let lo = (centre - support + 0.5).floor() as i64;
            let hi = (centre + support + 0.5).floor() as i64;
            let total: f64 = (lo..hi).map(|x| tri(x, centre)).sum();
            let total = if total != 0.0 { total } else { 1.0 };
            let a = lo.clamp(0, i64::from(in_size));
            let b = hi.clamp(0, i64::from(in_size));
            let n = ((b - a) as usize).min(self.taps);
            for j in 0..n {
                self.weights[o * self.taps + j] = (tri(a + j as i64, centre) / total) as f32;
            }
            self.start.push(a as usize);
            self.len.push(n);
        }
    }

    fn taps_of(&self, o: usize) -> (usize, &[f32]) {
        let w = &self.weights[o * self.taps..o * self.taps + self.len[o]];
        (self.start[o], w)
    }
}

/// Weights and buffers for one input size.
#[derive(Debug, Clone)]
struct Plan {
    in_w: u32,
    in_h: u32,
    horiz: Axis,
    vert: Axis,
    /// First input row the vertical pass reads.
    row0: usize,
    /// Input rows the vertical pass reads.
    rows: usize,
    /// Horizontal pass output: `rows x width x 3`.
    tmp: Vec<f32>,
    /// One output row: `width x 3`.
    acc: Vec<f32>,
}

impl Plan {
    /// Sets the input rows the vertical pass reads and sizes the horizontal pass's buffer.
    fn fit_rows(&mut self, width: u32) {
        let v = &self.vert;
        self.row0 = v.start.iter().copied().min().unwrap_or(0);
        let row1 = (0..v.start.len())
            .map(|o| v.start[o] + v.len[o])
            .max()
            .unwrap_or(0);
        self.rows = row1.saturating_sub(self.row0);
        self.tmp.resize(self.rows * width as usize * 3, 0.0);
    }
}

/// A rectangle of the source frame in pixels (`left`, `top` of its corner, may be negative;
/// it may reach past the frame, which reads as black there). See
/// [`Preprocessor::process_region`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Left edge, pixels from the frame's left.
    pub left: f64,
    /// Top edge, pixels from the frame's top.
    pub top: f64,
    /// Width in pixels.
    pub width: f64,
    /// Height in pixels.
    pub height: f64,
}

/// Turns frames into model input tensors (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Preprocessor {
    cfg: VideoConfig,
    plan: Option<Plan>,
    /// Buffers of [`Preprocessor::process_region`].
    region_plan: Option<Box<Plan>>,
}

impl Preprocessor {
    /// A preprocessor for `cfg`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`VideoConfig::validate`].
    pub fn new(cfg: &VideoConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            plan: None,
            region_plan: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VideoConfig {
        &self.cfg
    }

    fn plan_for(&mut self, in_w: u32, in_h: u32) -> &mut Plan {
        let stale = self
            .plan
            .as_ref()
            .is_none_or(|p| (p.in_w, p.in_h) != (in_w, in_h));
        if stale {
            let c = &self.cfg;
            let (rw, rh, left, top) = resized_geometry(in_w, in_h, c.width, c.height, c.resize);
            let mut plan = Plan {
                in_w,
                in_h,
                row0: 0,
                rows: 0,
                tmp: Vec::new(),
                acc: vec![0.0; c.width as usize * 3],
                horiz: Axis::new(in_w, rw, left, c.width),
                vert: Axis::new(in_h, rh, top, c.height),
            };
            plan.fit_rows(c.width);
            self.plan = Some(plan);
        }
        self.plan.as_mut().expect("plan was just made")
    }

    /// The part of a `in_w` x `in_h` frame that [`Preprocessor::process`] shows the model, in
    /// source pixels (to map model coordinates back to the frame).
    pub fn source_region(&self, in_w: u32, in_h: u32) -> Region {
        let c = &self.cfg;
        let (rw, rh, left, top) = resized_geometry(in_w, in_h, c.width, c.height, c.resize);
        let (sx, sy) = (
            f64::from(in_w) / f64::from(rw),
            f64::from(in_h) / f64::from(rh),
        );
        Region {
            left: f64::from(left) * sx,
            top: f64::from(top) * sy,
            width: f64::from(c.width) * sx,
            height: f64::from(c.height) * sy,
        }
    }

    /// Appends the model input of `region` of the frame (see [`Region`]) to `out`: the same
    /// filter, channel order, normalisation and layout as [`Preprocessor::process`], with the
    /// geometry given instead of `resize`. The weights are recomputed on every call into reused
    /// buffers (the region moves from frame to frame).
    ///
    /// # Panics
    /// As [`Preprocessor::process`], and if the region is not finite and positive.
    pub fn process_region(&mut self, frame: &Frame, region: Region, out: &mut Vec<f32>) {
        assert!(
            [region.left, region.top, region.width, region.height]
                .iter()
                .all(|v| v.is_finite())
                && region.width > 0.0
                && region.height > 0.0,
            "bad region {region:?}"
        );
        let (in_w, in_h) = check_frame(frame);
        let (tw, th) = (self.cfg.width, self.cfg.height);
        let plan = self.region_plan.get_or_insert_with(|| {
            Box::new(Plan {
                in_w,
                in_h,
                row0: 0,
                rows: 0,
                tmp: Vec::new(),
                acc: vec![0.0; tw as usize * 3],
                horiz: Axis::new(1, 1, 0, 0),
                vert: Axis::new(1, 1, 0, 0),
            })
        });
        plan.in_w = in_w;
        plan.in_h = in_h;
        plan.horiz.set_region(in_w, region.left, region.width, tw);
        plan.vert.set_region(in_h, region.top, region.height, th);
        plan.fit_rows(tw);
        run_plan(&self.cfg, plan, frame, out);
    }

    /// Appends the frame's model input ([`VideoConfig::tensor_len`] values, in the configured
    /// layout) to `out`.
    ///
    /// # Panics
    /// If `frame.rgb` is shorter than `width * height * 3` or the frame is empty.
    pub fn process(&mut self, frame: &Frame, out: &mut Vec<f32>) {
        let (in_w, in_h) = check_frame(frame);
        self.plan_for(in_w, in_h);
        let plan = self.plan.as_mut().expect("plan was just made");
        run_plan(&self.cfg, plan, frame, out);
    }
}

/// The frame's size, after checking that its buffer holds it.
fn check_frame(frame: &Frame) -> (u32, u32) {
    let (in_w, in_h) = (frame.width, frame.height);
    assert!(in_w > 0 && in_h > 0, "empty frame");
    let need = in_w as usize * 3 * in_h as usize;
    assert!(
        frame.rgb.len() >= need,
        "frame buffer holds {} bytes, {in_w}x{in_h} RGB needs {need}",
        frame.rgb.len(),
    );
    (in_w, in_h)
}

/// The two passes, normalisation and layout of one frame through `plan`.
fn run_plan(cfg: &VideoConfig, plan: &mut Plan, frame: &Frame, out: &mut Vec<f32>) {
    let stride = frame.width as usize * 3;
    let (tw, th) = (cfg.width as usize, cfg.height as usize);
    let swap = cfg.channels == ChannelOrder::Bgr;
    let layout = cfg.layout;
    let mean = cfg.mean;
    let std = cfg.std;

    // Horizontal pass over the rows the vertical pass needs.
    for r in 0..plan.rows {
        let src = &frame.rgb[(plan.row0 + r) * stride..(plan.row0 + r + 1) * stride];
        let dst = &mut plan.tmp[r * tw * 3..(r + 1) * tw * 3];
        for (o, d) in dst.chunks_exact_mut(3).enumerate() {
            let (start, w) = plan.horiz.taps_of(o);
            let px = &src[start * 3..(start + w.len()) * 3];
            let (mut a, mut b, mut c) = (0.0f32, 0.0f32, 0.0f32);
            for (wk, p) in w.iter().zip(px.chunks_exact(3)) {
                a += wk * f32::from(p[0]);
                b += wk * f32::from(p[1]);
                c += wk * f32::from(p[2]);
            }
            d[0] = a;
            d[1] = b;
            d[2] = c;
        }
    }

    // Vertical pass, normalisation and layout.
    let base = out.len();
    out.resize(base + 3 * tw * th, 0.0);
    let dst = &mut out[base..];
    let plane = tw * th;
    for oy in 0..th {
        let (start, w) = plan.vert.taps_of(oy);
        plan.acc.fill(0.0);
        for (k, wk) in w.iter().enumerate() {
            let r = start + k - plan.row0;
            let row = &plan.tmp[r * tw * 3..(r + 1) * tw * 3];
            for (a, v) in plan.acc.iter_mut().zip(row) {
                *a += wk * v;
            }
        }
        for ox in 0..tw {
            for c in 0..3 {
                let src_c = if swap { 2 - c } else { c };
                let v = (plan.acc[ox * 3 + src_c] - mean[c]) / std[c];
                let i = match layout {
                    Layout::Nchw => c * plane + oy * tw + ox,
                    Layout::Nhwc => (oy * tw + ox) * 3 + c,
                };
                dst[i] = v;
            }
        }
    }
}

/// Drops frames to honour [`VideoConfig::every`] and [`VideoConfig::fps`].
///
/// `every = k` keeps frames 0, k, 2k, ... of those it is shown. `fps = f` then keeps a frame
/// when its timestamp has reached the next slot of a grid of period `1 / f` anchored at the
/// first kept frame (with a tolerance of a quarter of a source frame), so the kept rate never
/// exceeds `f` and kept frames are as evenly spaced as the source allows (30 -> 10 fps keeps
/// every third frame; 25 -> 10 alternates gaps of 3 and 2). A target at or above the source
/// rate keeps everything. Timestamps are never changed.
#[derive(Debug, Clone)]
pub struct Decimator {
    source_fps: f64,
    every: u64,
    period: Option<f64>,
    tol: f64,
    seen: u64,
    anchor: Option<f64>,
    slot: u64,
}

impl Decimator {
    /// A decimator for a source of `source_fps` frames per second (0 or unknown: the `fps`
    /// target is applied on timestamps alone).
    pub fn new(cfg: &VideoConfig, source_fps: f64) -> Self {
        let known = source_fps.is_finite() && source_fps > 0.0;
        let period = cfg
            .fps
            .filter(|&f| f.is_finite() && f > 0.0)
            .filter(|&f| !known || f < source_fps * (1.0 - 1e-9))
            .map(|f| 1.0 / f);
        let tol = if known { 0.25 / source_fps } else { 1e-6 };
        Self {
            source_fps: if known { source_fps } else { 0.0 },
            every: u64::from(cfg.every.unwrap_or(1).max(1)),
            period,
            tol: period.map_or(tol, |p| tol.min(p / 4.0)),
            seen: 0,
            anchor: None,
            slot: 0,
        }
    }

    /// Mean seconds between kept frames: `max(every / source_fps, 1 / fps)` (the time step the
    /// stages after decimation see; `every / source_fps` alone when there is no `fps` target,
    /// and `1 / fps` when the source rate is unknown).
    pub fn period_s(&self) -> f64 {
        let by_every = if self.source_fps > 0.0 {
            self.every as f64 / self.source_fps
        } else {
            0.0
        };
        by_every.max(self.period.unwrap_or(0.0))
    }

    /// Whether to keep `frame` (call once per frame, in order).
    pub fn keep(&mut self, frame: &Frame) -> bool {
        let n = self.seen;
        self.seen += 1;
        if !n.is_multiple_of(self.every) {
            return false;
        }
        let Some(period) = self.period else {
            return true;
        };
        let t = frame.pts_s;
        let Some(anchor) = self.anchor else {
            self.anchor = Some(t);
            self.slot = 1;
            return true;
        };
        if t + self.tol < anchor + self.slot as f64 * period {
            return false;
        }
        // The next slot strictly after this frame.
        self.slot = ((t + self.tol - anchor) / period).floor().max(0.0) as u64 + 1;
        true
    }

    /// Forgets the frames seen (for a new stream).
    pub fn reset(&mut self) {
        self.seen = 0;
        self.anchor = None;
        self.slot = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, f: impl Fn(u32, u32, usize) -> u8) -> Frame {
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    rgb.push(f(x, y, c));
                }
            }
        }
        Frame {
            index: 0,
            pts_s: 0.0,
            width: w,
            height: h,
            rgb,
        }
    }

    #[test]
    fn geometry_matches_the_reference_rules() {
        assert_eq!(
            resized_geometry(160, 120, 224, 224, ResizeMode::Crop),
            (299, 224, 37, 0)
        );
        assert_eq!(
            resized_geometry(1920, 1080, 224, 224, ResizeMode::Crop),
            (398, 224, 87, 0)
        );
        assert_eq!(
            resized_geometry(120, 160, 224, 224, ResizeMode::Crop),
            (224, 299, 0, 37)
        );
        assert_eq!(
            resized_geometry(203, 97, 48, 64, ResizeMode::Crop),
            (134, 64, 43, 0)
        );
        assert_eq!(
            resized_geometry(320, 240, 160, 112, ResizeMode::Stretch),
            (160, 112, 0, 0)
        );
    }

    #[test]
    fn constant_frame_stays_constant_and_normalises() {
        let f = frame(37, 23, |_, _, c| [10, 100, 200][c]);
        let cfg = VideoConfig {
            width: 16,
            height: 8,
            mean: [10.0, 20.0, 30.0],
            std: [2.0, 4.0, 5.0],
            channels: ChannelOrder::Bgr,
            layout: Layout::Nhwc,
            ..VideoConfig::default()
        };
        let mut p = Preprocessor::new(&cfg).unwrap();
        let mut out = vec![7.0];
        p.process(&f, &mut out);
        assert_eq!(out.len(), 1 + cfg.tensor_len());
        let want = [
            (200.0 - 10.0) / 2.0,
            (100.0 - 20.0) / 4.0,
            (10.0 - 30.0) / 5.0,
        ];
        for (i, v) in out[1..].iter().enumerate() {
            assert!((v - want[i % 3]).abs() < 1e-4, "{i}: {v}");
        }
    }

    #[test]
    fn identity_size_is_exact_and_layouts_agree() {
        let f = frame(8, 6, |x, y, c| (x * 30 + y * 7 + c as u32 * 50) as u8);
        let mk = |layout| VideoConfig {
            width: 8,
            height: 6,
            layout,
            ..VideoConfig::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        Preprocessor::new(&mk(Layout::Nchw))
            .unwrap()
            .process(&f, &mut a);
        Preprocessor::new(&mk(Layout::Nhwc))
            .unwrap()
            .process(&f, &mut b);
        for y in 0..6 {
            for x in 0..8 {
                for c in 0..3 {
                    let px = f.pixel(x, y)[c] as f32;
                    assert_eq!(a[c * 48 + (y * 8 + x) as usize], px);
                    assert_eq!(b[((y * 8 + x) * 3) as usize + c], px);
                }
            }
        }
    }

    #[test]
    fn decimator_every_and_fps() {
        let mk = |fps, every| VideoConfig {
            fps,
            every,
            ..VideoConfig::default()
        };
        let run = |cfg: &VideoConfig, src: f64, n: u64| -> Vec<u64> {
            let mut d = Decimator::new(cfg, src);
            (0..n)
                .filter(|&i| {
                    let f = Frame {
                        index: i,
                        pts_s: i as f64 / src,
                        ..Frame::default()
                    };
                    d.keep(&f)
                })
                .collect()
        };
        assert_eq!(run(&mk(None, Some(3)), 30.0, 10), vec![0, 3, 6, 9]);
        assert_eq!(run(&mk(Some(10.0), None), 30.0, 10), vec![0, 3, 6, 9]);
        assert_eq!(run(&mk(Some(10.0), None), 25.0, 11), vec![0, 3, 5, 8, 10]);
        assert_eq!(run(&mk(Some(60.0), None), 30.0, 4), vec![0, 1, 2, 3]);
        assert_eq!(run(&mk(Some(7.5), Some(2)), 30.0, 13), vec![0, 4, 8, 12]);
        assert!(
            (Decimator::new(&mk(Some(7.5), Some(2)), 30.0).period_s() - 1.0 / 7.5).abs() < 1e-12
        );
        assert!((Decimator::new(&mk(None, Some(3)), 30.0).period_s() - 0.1).abs() < 1e-12);
        assert!(
            (Decimator::new(&mk(Some(60.0), None), 30.0).period_s() - 1.0 / 30.0).abs() < 1e-12
        );
    }

    #[test]
    fn validate_names_the_setting() {
        let bad = VideoConfig {
            std: [1.0, 0.0, 1.0],
            ..VideoConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("video.std")
        );
        let cfg: VideoConfig =
            toml::from_str("width = 112\nheight = 64\nresize = \"stretch\"").unwrap();
        assert_eq!(cfg.resize, ResizeMode::Stretch);
        assert_eq!(cfg.std, [1.0; 3]);
        assert!(toml::from_str::<VideoConfig>("width = 1\nheight = 1\nbogus = 2").is_err());
    }
}
