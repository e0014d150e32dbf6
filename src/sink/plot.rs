//! PNG pictures of one file's recognition result.
//!
//! People would rather look than read: [`write_png`] draws a file's input
//! features as a spectrogram, the per-frame posteriors as lines and the
//! detected events as bars, over one shared time axis, in a single image.
//!
//! # Layout
//!
//! The image is [`HEIGHT`] pixels high and [`PX_PER_SECOND`] pixels wide per
//! second of audio, clamped to [`MIN_WIDTH`]`..=`[`MAX_WIDTH`]. From top to
//! bottom:
//!
//! * the title line: the title at double size, a summary (duration, frames,
//!   bins, labels, events) on the right;
//! * the spectrogram panel: the features as a heat map (viridis, normalised to
//!   the smallest and largest finite value), lowest bin at the bottom;
//! * the posteriors panel: one line per label, 0 at the bottom and 1 at the
//!   top, each label's threshold as a dashed line of its colour;
//! * the events lane: one row per label, in the order of the legend, a bar
//!   from each event's start to its end with its score written in it where it
//!   fits;
//! * the time axis: ticks and labels in seconds (`m:ss` past a minute);
//! * the legend: each label's colour and name, wrapping onto more rows.
//!
//! A left margin holds the panels' scales (bin numbers, 0/0.5/1, label names
//! when rows are tall enough). [`layout`] gives the geometry in pixels.
//!
//! When there are more frames than pixel columns (long files), each column
//! shows the largest value of the frames it covers, so short peaks stay
//! visible. NaN values are not drawn. Text uses an embedded 5×7 bitmap font
//! (printable ASCII; other characters print as `?`).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageError, Rgb, RgbImage};

use crate::{Error, Result};

/// What to draw: one file's features, posteriors and events.
#[derive(Debug, Clone, Copy)]
pub struct PlotInput<'a> {
    /// Title line, e.g. the file name.
    pub title: &'a str,
    /// Features, `[frames * n_bins]` row-major (e.g. log-mel), drawn as the spectrogram.
    pub features: &'a [f32],
    /// Number of feature bins per frame.
    pub n_bins: usize,
    /// Per-frame scores in `[0, 1]`, `[frames * labels.len()]` row-major.
    pub posteriors: &'a [f32],
    /// Label names, one per posterior column.
    pub labels: &'a [String],
    /// Seconds between frames, for features and posteriors alike.
    pub frame_period_s: f64,
    /// Time of frame 0, in seconds.
    pub time_offset_s: f64,
    /// Detected events: `(label, start_s, end_s, score)`, times on the same
    /// clock as `time_offset_s`. A label not in
    /// `labels` gets its own row and legend entry after them.
    pub events: &'a [(String, f64, f64, f32)],
    /// One threshold per label, drawn as dashed lines in the posteriors panel.
    pub thresholds: Option<&'a [f32]>,
}

/// Image height in pixels.
pub const HEIGHT: u32 = 600;
/// Narrowest image, in pixels (short files).
pub const MIN_WIDTH: u32 = 800;
/// Widest image, in pixels (long files; frames are then aggregated by maximum).
pub const MAX_WIDTH: u32 = 4000;
/// Horizontal scale between the width limits.
pub const PX_PER_SECOND: f64 = 100.0;

const LEFT_MARGIN: u32 = 64;
const RIGHT_MARGIN: u32 = 16;
const SPECTROGRAM: Band = Band {
    top: 28,
    bottom: 228,
};
const POSTERIORS: Band = Band {
    top: 236,
    bottom: 396,
};
const EVENTS: Band = Band {
    top: 404,
    bottom: 484,
};
const LEGEND: Band = Band {
    top: 508,
    bottom: 596,
};
const LEGEND_ROW: u32 = 12;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const TEXT: Rgb<u8> = Rgb([25, 25, 25]);
const SUBTLE_TEXT: Rgb<u8> = Rgb([90, 90, 90]);
const BORDER: Rgb<u8> = Rgb([110, 110, 110]);
const GRID: Rgb<u8> = Rgb([228, 228, 228]);
const NO_DATA: Rgb<u8> = Rgb([236, 236, 236]);
const ROW_SHADE: Rgb<u8> = Rgb([245, 245, 245]);

/// A horizontal band of image rows, `top..bottom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// First row.
    pub top: u32,
    /// One past the last row.
    pub bottom: u32,
}

impl Band {
    /// Number of rows.
    pub fn height(&self) -> u32 {
        self.bottom - self.top
    }

    /// Whether row `y` is in the band.
    pub fn contains(&self, y: u32) -> bool {
        (self.top..self.bottom).contains(&y)
    }
}

/// Where things are in the image [`render`] draws for an input, in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Image width.
    pub width: u32,
    /// Image height ([`HEIGHT`]).
    pub height: u32,
    /// First column of the panels, at time `t_start`.
    pub plot_left: u32,
    /// One past the last column of the panels, at time `t_end`.
    pub plot_right: u32,
    /// The spectrogram panel.
    pub spectrogram: Band,
    /// The posteriors panel (its first and last rows are its frame).
    pub posteriors: Band,
    /// The events lane, split into [`Layout::lane_row`]s.
    pub events: Band,
    /// Row of the time axis line; ticks and their labels are below it.
    pub axis_y: u32,
    /// The legend.
    pub legend: Band,
    /// Time at the left edge of the panels: the input's `time_offset_s`.
    pub t_start: f64,
    /// Time at the right edge: `t_start + n_frames * frame_period_s`.
    pub t_end: f64,
    /// Frames on the time axis: the larger of the feature and posterior frame counts.
    pub n_frames: usize,
    /// Rows of the events lane and entries of the legend: the input's labels,
    /// then event labels not among them in order of first appearance.
    pub lane_labels: Vec<String>,
}

impl Layout {
    /// Number of columns of the panels.
    pub fn plot_width(&self) -> u32 {
        self.plot_right - self.plot_left
    }

    /// Horizontal position of time `t` (seconds): column `floor(x_at(t))` holds it.
    pub fn x_at(&self, t: f64) -> f64 {
        let span = self.t_end - self.t_start;
        if span <= 0.0 {
            return f64::from(self.plot_left);
        }
        f64::from(self.plot_left) + (t - self.t_start) / span * f64::from(self.plot_width())
    }

    /// Row of posterior value `p` (clamped to `[0, 1]`) in the posteriors panel.
    pub fn y_at(&self, p: f32) -> u32 {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let bottom = self.posteriors.bottom - 2;
        let span = self.posteriors.height() - 4;
        bottom - (p * span as f32).round() as u32
    }

    /// Row band of `lane_labels[i]` in the events lane.
    pub fn lane_row(&self, i: usize) -> Band {
        let n = self.lane_labels.len().max(1) as u64;
        let h = u64::from(self.events.height());
        let at = |k: u64| self.events.top + (k * h / n) as u32;
        Band {
            top: at(i as u64),
            bottom: at(i as u64 + 1),
        }
    }
}

/// Checks the input's shapes and computes where everything goes.
///
/// Errors: [`Error::Shape`] when `features` is not a multiple of `n_bins`,
/// `posteriors` not a multiple of `labels.len()`, or `thresholds` not one per
/// label; [`Error::InvalidConfig`] for a non-positive or non-finite frame
/// period or a non-finite time offset.
pub fn layout(input: &PlotInput) -> Result<Layout> {
    let (n_feat, n_post) = frame_counts(input)?;
    let n_frames = n_feat.max(n_post);
    let t_start = input.time_offset_s;
    let duration = n_frames as f64 * input.frame_period_s;
    let width = (duration * PX_PER_SECOND)
        .round()
        .clamp(f64::from(MIN_WIDTH), f64::from(MAX_WIDTH)) as u32;

    let mut lane_labels: Vec<String> = input.labels.to_vec();
    let mut known: HashSet<&str> = input.labels.iter().map(String::as_str).collect();
    for (label, ..) in input.events {
        if known.insert(label.as_str()) {
            lane_labels.push(label.clone());
        }
    }

    Ok(Layout {
        width,
        height: HEIGHT,
        plot_left: LEFT_MARGIN,
        plot_right: width - RIGHT_MARGIN,
        spectrogram: SPECTROGRAM,
        posteriors: POSTERIORS,
        events: EVENTS,
        axis_y: EVENTS.bottom,
        legend: LEGEND,
        t_start,
        t_end: t_start + duration,
        n_frames,
        lane_labels,
    })
}

/// Validates the input; returns the feature and posterior frame counts.
fn frame_counts(input: &PlotInput) -> Result<(usize, usize)> {
    if !(input.frame_period_s.is_finite() && input.frame_period_s > 0.0) {
        return Err(Error::config(
            "frame_period_s",
            format!(
                "must be a positive number of seconds, got {}",
                input.frame_period_s
            ),
        ));
    }
    if !input.time_offset_s.is_finite() {
        return Err(Error::config(
            "time_offset_s",
            format!("must be finite, got {}", input.time_offset_s),
        ));
    }
    let n_feat = rows_of(input.features.len(), input.n_bins, "features", "n_bins")?;
    let n_post = rows_of(
        input.posteriors.len(),
        input.labels.len(),
        "posteriors",
        "labels",
    )?;
    if let Some(th) = input.thresholds
        && th.len() != input.labels.len()
    {
        return Err(Error::Shape(format!(
            "plot: {} thresholds for {} labels (need one per label)",
            th.len(),
            input.labels.len()
        )));
    }
    Ok((n_feat, n_post))
}

/// Rows of a row-major array of `len` values with `cols` columns.
fn rows_of(len: usize, cols: usize, what: &str, cols_name: &str) -> Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(Error::Shape(format!(
            "plot: {what} has {len} values, not a whole number of frames of {cols_name} = {cols}"
        )));
    }
    Ok(len / cols)
}

/// Renders the input to an image (see the [module docs](self) for the layout).
///
/// Errors as for [`layout`]; any data that passes those checks renders,
/// including zero frames (the title and "no frames") and NaN values (not drawn).
pub fn render(input: &PlotInput) -> Result<RgbImage> {
    let layout = layout(input)?;
    let mut canvas = Canvas::new(layout.width, layout.height);
    draw_title(&mut canvas, &layout, input);
    if layout.n_frames == 0 {
        let mid = Band {
            top: SPECTROGRAM.top,
            bottom: EVENTS.bottom,
        };
        canvas.text_centered(
            layout.width as i64 / 2,
            mid_row(mid, 2),
            "no frames",
            2,
            TEXT,
        );
        return Ok(canvas.img);
    }
    let ticks = time_ticks(&layout);
    draw_spectrogram(&mut canvas, &layout, input);
    draw_posteriors(&mut canvas, &layout, input, &ticks);
    draw_events(&mut canvas, &layout, input, &ticks);
    draw_time_axis(&mut canvas, &layout, &ticks);
    draw_legend(&mut canvas, &layout, input.thresholds.is_some());
    Ok(canvas.img)
}

/// Renders the input and writes it to `path` as a PNG.
///
/// Errors as for [`render`], and [`Error::Io`] when the file cannot be written.
pub fn write_png(path: &Path, input: &PlotInput) -> Result<()> {
    let img = render(input)?;
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::new(file);
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::io(path, image_to_io(e)))?;
    out.flush().map_err(|e| Error::io(path, e))
}

fn image_to_io(e: ImageError) -> std::io::Error {
    match e {
        ImageError::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

// ---------------------------------------------------------------------------
// Panels
// ---------------------------------------------------------------------------

fn draw_title(c: &mut Canvas, l: &Layout, input: &PlotInput) {
    let summary = if l.n_frames == 0 {
        String::new()
    } else {
        format!(
            "{}  |  {} frames x {} ms  |  {} bins  |  {} labels  |  {} events",
            format_duration(l.t_end - l.t_start),
            l.n_frames,
            trim_float(input.frame_period_s * 1000.0, 2),
            input.n_bins,
            input.labels.len(),
            input.events.len()
        )
    };
    let right = i64::from(l.width - RIGHT_MARGIN);
    let mut summary_x = right - text_width(&summary, 1);
    let title_room = |sx: i64| ((sx - 24 - 8) / 12).max(0) as usize;
    if title_room(summary_x) < 12 {
        summary_x = right; // no room for both: the title wins
    }
    let title = truncate(input.title, title_room(summary_x));
    c.text(8, 6, &title, 2, TEXT);
    if summary_x < right {
        c.text(summary_x, 10, &summary, 1, SUBTLE_TEXT);
    }
}

fn draw_spectrogram(c: &mut Canvas, l: &Layout, input: &PlotInput) {
    let band = l.spectrogram;
    let (x0, pw) = (l.plot_left, l.plot_width() as usize);
    c.fill_rect(
        x0 as i64,
        band.top as i64,
        pw as i64,
        band.height() as i64,
        NO_DATA,
    );
    let n_bins = input.n_bins;
    let n_feat = input.features.len().checked_div(n_bins).unwrap_or(0);
    if n_feat == 0 {
        c.text_centered(
            x0 as i64 + pw as i64 / 2,
            mid_row(band, 1),
            "no features",
            1,
            SUBTLE_TEXT,
        );
        return;
    }
    let margin_x = i64::from(x0) - 4;
    c.text_right(
        margin_x,
        band.top as i64,
        &(n_bins - 1).to_string(),
        SUBTLE_TEXT,
    );
    c.text_right(margin_x, mid_row(band, 1), "bins", SUBTLE_TEXT);
    c.text_right(margin_x, band.bottom as i64 - 7, "0", SUBTLE_TEXT);

    let range = finite_range(input.features);
    let rows = band.height() as usize;
    let mut column = vec![None; n_bins];
    for x in 0..pw {
        let frames = clip(span(l.n_frames, pw, x), n_feat);
        if frames.is_empty() {
            continue;
        }
        column.fill(None);
        for f in frames {
            let frame = &input.features[f * n_bins..(f + 1) * n_bins];
            for (acc, &v) in column.iter_mut().zip(frame) {
                *acc = max_skip_nan(*acc, v);
            }
        }
        for r in 0..rows {
            let bins = span(n_bins, rows, rows - 1 - r); // low bins at the bottom
            if let Some(v) = column[bins].iter().flatten().copied().reduce(f32::max) {
                let color = colormap(normalise(v, range));
                c.put(
                    (x0 as usize + x) as i64,
                    (band.top as usize + r) as i64,
                    color,
                );
            }
        }
    }
}

fn draw_posteriors(c: &mut Canvas, l: &Layout, input: &PlotInput, ticks: &[Tick]) {
    let band = l.posteriors;
    let (x0, x1) = (i64::from(l.plot_left), i64::from(l.plot_right));
    for q in [0.25, 0.5, 0.75] {
        c.hline(x0, x1, l.y_at(q) as i64, GRID);
    }
    for t in ticks {
        c.vline(t.x, band.top as i64, band.bottom as i64 - 1, GRID);
    }
    c.outline(x0, band.top as i64, x1 - x0, band.height() as i64, BORDER);
    for (q, text) in [(1.0, "1.0"), (0.5, "0.5"), (0.0, "0.0")] {
        c.text_right(x0 - 4, l.y_at(q) as i64 - 3, text, SUBTLE_TEXT);
    }

    let n_labels = input.labels.len();
    let n_post = input.posteriors.len().checked_div(n_labels).unwrap_or(0);
    if n_post == 0 {
        c.text_centered(
            (x0 + x1) / 2,
            mid_row(band, 1),
            "no posteriors",
            1,
            SUBTLE_TEXT,
        );
    }
    // Dashes of 5 px; up to 4 labels take turns, so equal thresholds all show.
    let slots = n_labels.clamp(2, 4) as i64;
    for (k, th) in input.thresholds.unwrap_or(&[]).iter().enumerate() {
        if !th.is_nan() {
            let phase = k as i64 % slots * 5;
            let y = l.y_at(*th) as i64;
            c.dashed_hline(x0, x1, y, 5, 5 * slots, phase, label_color(k));
        }
    }
    let pw = l.plot_width() as usize;
    let drawn = if n_post == 0 { 0 } else { n_labels };
    for k in 0..drawn {
        let color = label_color(k);
        let mut prev: Option<i64> = None;
        for x in 0..pw {
            let frames = clip(span(l.n_frames, pw, x), n_post);
            let value = frames
                .map(|f| input.posteriors[f * n_labels + k])
                .fold(None, max_skip_nan);
            prev = value.map(|v| {
                let y = l.y_at(v) as i64;
                let px = x0 + x as i64;
                c.vline(px, prev.unwrap_or(y), y, color);
                y
            });
        }
    }
}

fn draw_events(c: &mut Canvas, l: &Layout, input: &PlotInput, ticks: &[Tick]) {
    let band = l.events;
    let (x0, x1) = (i64::from(l.plot_left), i64::from(l.plot_right));
    let n_rows = l.lane_labels.len();
    for i in 0..n_rows {
        let row = l.lane_row(i);
        if i % 2 == 1 {
            c.fill_rect(x0, row.top as i64, x1 - x0, row.height() as i64, ROW_SHADE);
        }
        if row.height() >= 8 {
            let name = truncate(&l.lane_labels[i], (LEFT_MARGIN as usize - 8) / 6);
            c.text_right(x0 - 4, mid_row(row, 1), &name, TEXT);
        }
    }
    if n_rows > 0 && l.lane_row(0).height() < 8 {
        c.text_right(x0 - 4, mid_row(band, 1), "events", SUBTLE_TEXT);
    }
    for t in ticks {
        c.vline(t.x, band.top as i64, band.bottom as i64 - 1, GRID);
    }
    c.hline(x0, x1, band.top as i64, BORDER);
    if input.events.is_empty() {
        c.text_centered((x0 + x1) / 2, mid_row(band, 1), "no events", 1, SUBTLE_TEXT);
    }

    let row_of: HashMap<&str, usize> = l
        .lane_labels
        .iter()
        .enumerate()
        .rev() // the first occurrence of a duplicated label wins
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for (label, start, end, score) in input.events {
        let Some(&i) = row_of.get(label.as_str()) else {
            continue;
        };
        if !(start.is_finite() && end.is_finite()) {
            continue;
        }
        let (a, b) = (l.x_at(start.min(*end)), l.x_at(start.max(*end)));
        if b < x0 as f64 || a > x1 as f64 {
            continue; // outside the plotted time span
        }
        let left = (a.floor() as i64).clamp(x0, x1 - 1);
        let right = (b.ceil() as i64).clamp(left + 1, x1);
        let row = l.lane_row(i);
        let pad = i64::from(row.height() >= 6);
        let (top, h) = (row.top as i64 + pad, row.height() as i64 - 2 * pad);
        let color = label_color(i);
        c.fill_rect(left, top, right - left, h, color);

        let text = format!("{score:.2}");
        if score.is_finite() && h >= 9 && right - left >= text_width(&text, 1) + 4 {
            c.text(left + 2, top + (h - 7) / 2, &text, 1, contrast_text(color));
        }
    }
}

fn draw_time_axis(c: &mut Canvas, l: &Layout, ticks: &[Tick]) {
    let y = i64::from(l.axis_y);
    c.hline(i64::from(l.plot_left), i64::from(l.plot_right), y, BORDER);
    for t in ticks {
        c.vline(t.x, y, y + 4, BORDER);
        let w = text_width(&t.label, 1);
        let tx = (t.x - w / 2).clamp(i64::from(l.plot_left), i64::from(l.width) - w);
        c.text(tx, y + 7, &t.label, 1, TEXT);
    }
    let caption = if uses_clock(l) { "time" } else { "time (s)" };
    c.text_right(i64::from(l.plot_left) - 4, y + 7, caption, SUBTLE_TEXT);
}

fn draw_legend(c: &mut Canvas, l: &Layout, thresholds: bool) {
    let band = l.legend;
    let (left, right) = (i64::from(l.plot_left), i64::from(l.plot_right));
    let mut entries: Vec<(&str, Option<Rgb<u8>>)> = l
        .lane_labels
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), Some(label_color(i))))
        .collect();
    if thresholds && !entries.is_empty() {
        entries.push(("threshold", None));
    }
    let entry_width = |name: &str| 16 + text_width(name, 1) + 14;
    let more_width = text_width("+9999 more", 1);
    let (mut x, mut y) = (left, i64::from(band.top));
    let mut i = 0;
    while i < entries.len() {
        let (name, color) = entries[i];
        let name = truncate(name, 40);
        let last_row = y + 2 * LEGEND_ROW as i64 > band.bottom as i64;
        let reserve = if last_row && i + 1 < entries.len() {
            more_width
        } else {
            0
        };
        if x + entry_width(&name) + reserve > right && (x > left || last_row) {
            if last_row {
                let more = format!("+{} more", entries.len() - i);
                c.text(x, y + 2, &more, 1, SUBTLE_TEXT);
                break;
            }
            (x, y) = (left, y + LEGEND_ROW as i64);
            continue;
        }
        match color {
            Some(color) => c.fill_rect(x, y + 2, 12, 7, color),
            None => c.dashed_hline(x, x + 12, y + 5, 3, 5, 0, BORDER),
        }
        c.text(x + 16, y + 2, &name, 1, TEXT);
        x += entry_width(&name);
        i += 1;
    }
}

// ---------------------------------------------------------------------------
// Time ticks
// ---------------------------------------------------------------------------

/// A tick of the time axis: its column and label.
struct Tick {
    x: i64,
    label: String,
}

/// Whether tick labels are `m:ss` rather than seconds.
fn uses_clock(l: &Layout) -> bool {
    l.t_start.abs().max(l.t_end.abs()) >= 60.0 && tick_step(l) >= 1.0
}

/// The smallest "round" tick step whose labels do not crowd each other.
fn tick_step(l: &Layout) -> f64 {
    const STEPS: [f64; 26] = [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
    ];
    let span = l.t_end - l.t_start;
    let px_per_s = f64::from(l.plot_width()) / span;
    let widest = l.t_start.abs().max(l.t_end.abs());
    let fits = |step: f64| {
        let label = format_tick(widest, step, widest >= 60.0 && step >= 1.0);
        step * px_per_s >= (text_width(&label, 1) + 16) as f64
    };
    STEPS.into_iter().find(|&s| fits(s)).unwrap_or(span)
}

fn time_ticks(l: &Layout) -> Vec<Tick> {
    let step = tick_step(l);
    let clock = uses_clock(l);
    let first = (l.t_start / step - 1e-9).ceil() as i64;
    let last = (l.t_end / step + 1e-9).floor() as i64;
    (first..=last)
        .take(1000)
        .map(|k| {
            let t = k as f64 * step;
            let x = (l.x_at(t).floor() as i64).min(i64::from(l.plot_right) - 1);
            Tick {
                x,
                label: format_tick(t, step, clock),
            }
        })
        .collect()
}

/// A tick label: `m:ss` / `h:mm:ss` for `clock`, else seconds with as many
/// decimals as `step` needs.
fn format_tick(t: f64, step: f64, clock: bool) -> String {
    if clock {
        return format_clock(t);
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    };
    let s = format!("{t:.decimals$}");
    if s.trim_start_matches(['-', '0', '.']).is_empty() {
        s.replace('-', "")
    } else {
        s
    }
}

fn format_clock(t: f64) -> String {
    let sign = if t < -0.5 { "-" } else { "" };
    let s = t.abs().round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}")
    } else {
        format!("{sign}{m}:{s:02}")
    }
}

fn format_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.2} s")
    } else {
        format_clock(seconds)
    }
}

// ---------------------------------------------------------------------------
// Colours and values
// ---------------------------------------------------------------------------

/// Colour of label `i` (of [`Layout::lane_labels`]): the ten Tableau colours,
/// then hues spaced by the golden angle.
pub fn label_color(i: usize) -> Rgb<u8> {
    const TAB10: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    if let Some(rgb) = TAB10.get(i) {
        return Rgb(*rgb);
    }
    let hue = (i as f64 * 137.507_764) % 360.0;
    let saturation = [0.75, 0.55, 0.9][i % 3];
    let value = [0.85, 0.65, 0.75][(i / 3) % 3];
    hsv(hue, saturation, value)
}

fn hsv(h: f64, s: f64, v: f64) -> Rgb<u8> {
    let c = v * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |u: f64| ((u + m) * 255.0).round() as u8;
    Rgb([byte(r), byte(g), byte(b)])
}

/// The spectrogram colour of `t` in `[0, 1]` (viridis; clamped, NaN as 0).
pub fn colormap(t: f32) -> Rgb<u8> {
    const VIRIDIS: [[f32; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [72.0, 40.0, 120.0],
        [62.0, 74.0, 137.0],
        [49.0, 104.0, 142.0],
        [38.0, 130.0, 142.0],
        [31.0, 158.0, 137.0],
        [53.0, 183.0, 121.0],
        [109.0, 205.0, 89.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (VIRIDIS.len() - 1) as f32;
    let i = (pos as usize).min(VIRIDIS.len() - 2);
    let frac = pos - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |k: usize| (a[k] + (b[k] - a[k]) * frac).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

/// Black or white, whichever reads better on `bg`.
fn contrast_text(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 150.0 {
        TEXT
    } else {
        WHITE
    }
}

/// Smallest and largest finite value, if any.
fn finite_range(values: &[f32]) -> Option<(f32, f32)> {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// `v` scaled to `[0, 1]` by `range`; infinities go to the ends.
fn normalise(v: f32, range: Option<(f32, f32)>) -> f32 {
    match range {
        Some((lo, hi)) if hi > lo => ((v - lo) / (hi - lo)).clamp(0.0, 1.0),
        _ if v.is_finite() => 0.5,
        _ => f32::from(u8::from(v > 0.0)),
    }
}

/// The larger of `acc` and `v`, ignoring NaN.
fn max_skip_nan(acc: Option<f32>, v: f32) -> Option<f32> {
    if v.is_nan() {
        acc
    } else {
        Some(acc.map_or(v, |a| a.max(v)))
    }
}

/// The items of `n` that pixel `i` of `pixels` shows: a partition of `0..n`
/// when `n >= pixels`, else the one item under the pixel.
fn span(n: usize, pixels: usize, i: usize) -> Range<usize> {
    let a = i * n / pixels;
    let b = ((i + 1) * n / pixels).max(a + 1);
    a..b
}

fn clip(r: Range<usize>, len: usize) -> Range<usize> {
    r.start.min(len)..r.end.min(len)
}

/// Top row for text of `scale` centred vertically in `band`.
fn mid_row(band: Band, scale: i64) -> i64 {
    (band.top as i64 + band.bottom as i64 - 7 * scale) / 2
}

/// `s` cut to at most `max` characters, ending in `..` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max < 2 {
        return s.chars().take(max).collect();
    }
    let mut out: String = s.chars().take(max - 2).collect();
    out.push_str("..");
    out
}

/// `v` with at most `decimals` decimals, trailing zeros dropped.
fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// Drawing primitives
// ---------------------------------------------------------------------------

/// An image with clipped drawing helpers; coordinates may fall outside.
struct Canvas {
    img: RgbImage,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        Canvas {
            img: RgbImage::from_pixel(width, height, WHITE),
        }
    }

    fn put(&mut self, x: i64, y: i64, color: Rgb<u8>) {
        if (0..self.img.width() as i64).contains(&x) && (0..self.img.height() as i64).contains(&y) {
            self.img.put_pixel(x as u32, y as u32, color);
        }
    }

    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
        let xs = x.max(0)..(x + w).min(self.img.width() as i64);
        for yy in y.max(0)..(y + h).min(self.img.height() as i64) {
            for xx in xs.clone() {
                self.img.put_pixel(xx as u32, yy as u32, color);
            }
        }
    }

    fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
        self.hline(x, x + w, y, color);
        self.hline(x, x + w, y + h - 1, color);
        self.vline(x, y, y + h - 1, color);
        self.vline(x + w - 1, y, y + h - 1, color);
    }

    /// Row `y`, columns `x0..x1`.
    fn hline(&mut self, x0: i64, x1: i64, y: i64, color: Rgb<u8>) {
        self.fill_rect(x0, y, x1 - x0, 1, color);
    }

    /// Column `x`, rows from `y0` to `y1` inclusive, in either order.
    fn vline(&mut self, x: i64, y0: i64, y1: i64, color: Rgb<u8>) {
        let (a, b) = (y0.min(y1), y0.max(y1));
        self.fill_rect(x, a, 1, b - a + 1, color);
    }

    /// Row `y`, columns `x0..x1`, in dashes `on` px long every `period` px,
    /// the first starting `phase` px after `x0`.
    #[allow(clippy::too_many_arguments)]
    fn dashed_hline(
        &mut self,
        x0: i64,
        x1: i64,
        y: i64,
        on: i64,
        period: i64,
        phase: i64,
        color: Rgb<u8>,
    ) {
        for x in (x0 + phase..x1).step_by(period.max(1) as usize) {
            self.hline(x, (x + on).min(x1), y, color);
        }
    }

    /// Draws `s` with its top-left corner at `(x, y)`; returns the x after it.
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, color: Rgb<u8>) -> i64 {
        let mut cx = x;
        for ch in s.chars() {
            for (col, bits) in glyph(ch).iter().enumerate() {
                for row in 0..7 {
                    if bits >> row & 1 == 1 {
                        self.fill_rect(
                            cx + col as i64 * scale,
                            y + row * scale,
                            scale,
                            scale,
                            color,
                        );
                    }
                }
            }
            cx += 6 * scale;
        }
        cx
    }

    /// Draws `s` at scale 1 ending at column `right`.
    fn text_right(&mut self, right: i64, y: i64, s: &str, color: Rgb<u8>) {
        self.text(right - text_width(s, 1), y, s, 1, color);
    }

    /// Draws `s` centred on column `cx`.
    fn text_centered(&mut self, cx: i64, y: i64, s: &str, scale: i64, color: Rgb<u8>) {
        self.text(cx - text_width(s, scale) / 2, y, s, scale, color);
    }
}

/// Width in pixels of `s` drawn at `scale`.
fn text_width(s: &str, scale: i64) -> i64 {
    let n = s.chars().count() as i64;
    (6 * n - 1).max(0) * scale
}

// ---------------------------------------------------------------------------
// Font
// ---------------------------------------------------------------------------

/// The 5×7 glyph of `ch`: five columns, bit 0 the top row (`?` outside ASCII 32..=126).
fn glyph(ch: char) -> &'static [u8; 5] {
    let i = (ch as u32).wrapping_sub(32) as usize;
    FONT.get(i).unwrap_or(&FONT[('?' as usize) - 32])
}

/// Classic 5×7 font for ASCII 32..=126, column-major, bit 0 at the top.
#[rustfmt::skip]
const FONT: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x08, 0x2A, 0x1C, 0x2A, 0x08], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x08, 0x14, 0x54, 0x54, 0x3C], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x20, 0x40, 0x44, 0x3D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0x7C, 0x14, 0x14, 0x14, 0x08], // p
    [0x08, 0x14, 0x14, 0x18, 0x7C], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x0C, 0x50, 0x50, 0x50, 0x3C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];
