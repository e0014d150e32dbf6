//! PNG plots of a recognition result: geometry, pixels, edge cases, file output.

use image::Rgb;
use seqrec::Error;
use seqrec::sink::plot::{
    self, HEIGHT, MAX_WIDTH, MIN_WIDTH, PlotInput, colormap, label_color, layout, render,
};

const PERIOD: f64 = 0.01;

/// 3 s at 10 ms: 40 bins, bin 0 bright from 1 s to 2 s; three labels with
/// `a` at 0.25 throughout, `b` at 0, `c` at 0.9 then NaN; one event of `b`
/// from 1 s to 2 s.
struct Synthetic {
    features: Vec<f32>,
    posteriors: Vec<f32>,
    labels: Vec<String>,
    events: Vec<(String, f64, f64, f32)>,
    thresholds: Vec<f32>,
}

impl Synthetic {
    fn new() -> Self {
        let frames = 300;
        let bins = 40;
        let mut features = vec![0.0f32; frames * bins];
        for f in 100..200 {
            features[f * bins] = 10.0;
        }
        let mut posteriors = Vec::with_capacity(frames * 3);
        for f in 0..frames {
            posteriors.extend([0.25, 0.0, if f < 150 { 0.9 } else { f32::NAN }]);
        }
        Synthetic {
            features,
            posteriors,
            labels: vec!["a".into(), "b".into(), "c".into()],
            events: vec![("b".into(), 1.0, 2.0, 0.8)],
            thresholds: vec![0.5, 0.6, 0.7],
        }
    }

    fn input(&self) -> PlotInput<'_> {
        PlotInput {
            title: "synthetic.wav",
            features: &self.features,
            n_bins: 40,
            posteriors: &self.posteriors,
            labels: &self.labels,
            frame_period_s: PERIOD,
            time_offset_s: 0.0,
            events: &self.events,
            thresholds: Some(&self.thresholds),
        }
    }
}

fn empty_input<'a>() -> PlotInput<'a> {
    PlotInput {
        title: "empty",
        features: &[],
        n_bins: 40,
        posteriors: &[],
        labels: &[],
        frame_period_s: PERIOD,
        time_offset_s: 0.0,
        events: &[],
        thresholds: None,
    }
}

/// A plot of scores only (no features), starting at 0 s, no events or thresholds.
fn scores_only<'a>(title: &'a str, posteriors: &'a [f32], labels: &'a [String]) -> PlotInput<'a> {
    PlotInput {
        title,
        features: &[],
        n_bins: 0,
        posteriors,
        labels,
        frame_period_s: PERIOD,
        time_offset_s: 0.0,
        events: &[],
        thresholds: None,
    }
}

#[test]
fn dimensions_follow_duration() {
    let s = Synthetic::new();
    let img = render(&s.input()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (MIN_WIDTH, HEIGHT),
        "3 s clamps to the minimum width"
    );

    // 20 s at 100 px/s.
    let posteriors = vec![0.5f32; 2000];
    let labels = vec!["x".to_string()];
    let input = PlotInput {
        posteriors: &posteriors,
        labels: &labels,
        thresholds: None,
        features: &[],
        events: &[],
        ..s.input()
    };
    let img = render(&input).unwrap();
    assert_eq!((img.width(), img.height()), (2000, HEIGHT));
    assert_eq!(layout(&input).unwrap().width, 2000);
}

#[test]
fn event_bar_spans_its_time_in_its_row() {
    let s = Synthetic::new();
    let input = s.input();
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    let color = label_color(1);
    let row = l.lane_row(1);
    assert!(l.events.contains(row.top) && l.events.contains(row.bottom - 1));
    let in_row = |x: u32| (row.top..row.bottom).any(|y| *img.get_pixel(x, y) == color);

    let (x_start, x_end) = (l.x_at(1.0), l.x_at(2.0));
    assert_eq!(
        (x_start, x_end),
        (304.0, 544.0),
        "64 px margin + 240 px/s over 720 px"
    );
    for x in x_start as u32..x_end as u32 {
        assert!(in_row(x), "bar colour missing at x = {x}");
    }
    for x in (l.plot_left..x_start as u32).chain(x_end as u32..l.width) {
        assert!(!in_row(x), "bar colour outside the event at x = {x}");
    }
    // No other row of the lane holds it.
    for i in [0, 2] {
        let other = l.lane_row(i);
        for y in other.top..other.bottom {
            for x in l.plot_left..l.plot_right {
                assert_ne!(*img.get_pixel(x, y), color, "row {i} at ({x}, {y})");
            }
        }
    }
}

#[test]
fn posterior_lines_sit_at_their_values() {
    let s = Synthetic::new();
    let input = s.input();
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    assert_eq!(l.y_at(0.0), l.posteriors.bottom - 2);
    assert_eq!(l.y_at(1.0), l.posteriors.top + 2);

    let y = l.y_at(0.25);
    for t in [0.2, 1.5, 2.9] {
        let x = l.x_at(t) as u32;
        assert_eq!(*img.get_pixel(x, y), label_color(0), "label a at t = {t}");
        for dy in [3, 6] {
            assert_ne!(*img.get_pixel(x, y - dy), label_color(0));
            assert_ne!(*img.get_pixel(x, y + dy), label_color(0));
        }
    }
    // Label c: 0.9 for the first 1.5 s, NaN (not drawn) after.
    let yc = l.y_at(0.9);
    assert_eq!(*img.get_pixel(l.x_at(1.0) as u32, yc), label_color(2));
    let band = l.posteriors;
    let threshold_row = l.y_at(0.7); // c's dashed threshold
    for x in l.x_at(1.6) as u32..l.plot_right {
        for y in (band.top..band.bottom).filter(|&y| y != threshold_row) {
            assert_ne!(
                *img.get_pixel(x, y),
                label_color(2),
                "NaN drawn at ({x}, {y})"
            );
        }
    }
}

#[test]
fn threshold_is_dashed_in_label_colour() {
    let s = Synthetic::new();
    let input = s.input();
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    let y = l.y_at(0.6); // label b's threshold
    let row: Vec<bool> = (l.plot_left..l.plot_right)
        .map(|x| *img.get_pixel(x, y) == label_color(1))
        .collect();
    let on = row.iter().filter(|&&b| b).count();
    assert!(
        on >= row.len() / 4 && on < row.len(),
        "dashed: {on} of {} px",
        row.len()
    );
}

#[test]
fn spectrogram_has_low_bins_at_the_bottom() {
    let s = Synthetic::new();
    let input = s.input();
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    let band = l.spectrogram;
    let (inside, outside) = (l.x_at(1.5) as u32, l.x_at(0.5) as u32);
    // Bin 0 is bright (max) from 1 s to 2 s; everything else is the min.
    assert_eq!(*img.get_pixel(inside, band.bottom - 1), colormap(1.0));
    assert_eq!(*img.get_pixel(inside, band.top), colormap(0.0));
    assert_eq!(*img.get_pixel(outside, band.bottom - 1), colormap(0.0));
    // 40 bins over 200 rows: 5 rows per bin.
    assert_eq!(*img.get_pixel(inside, band.bottom - 5), colormap(1.0));
    assert_eq!(*img.get_pixel(inside, band.bottom - 6), colormap(0.0));
}

#[test]
fn colormap_is_viridis_and_clamped() {
    assert_eq!(colormap(0.0), Rgb([68, 1, 84]));
    assert_eq!(colormap(1.0), Rgb([253, 231, 37]));
    assert_eq!(colormap(-3.0), colormap(0.0));
    assert_eq!(colormap(7.0), colormap(1.0));
    assert_eq!(colormap(f32::NAN), colormap(0.0));
}

#[test]
fn label_colours_are_distinct() {
    let colors: Vec<_> = (0..50).map(label_color).collect();
    for i in 0..colors.len() {
        for j in 0..i {
            assert_ne!(colors[i], colors[j], "labels {i} and {j}");
        }
    }
}

#[test]
fn long_files_are_clamped_and_aggregated_by_max() {
    // One hour at 10 ms with a single-frame spike at 30 min.
    let frames = 360_000;
    let mut posteriors = vec![0.0f32; frames];
    posteriors[180_000] = 1.0;
    let labels = vec!["spike".to_string()];
    let input = scores_only("long", &posteriors, &labels);
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    assert_eq!((img.width(), img.height()), (MAX_WIDTH, HEIGHT));
    let x = l.x_at(1800.0) as u32;
    assert_eq!(
        *img.get_pixel(x, l.y_at(1.0)),
        label_color(0),
        "spike survives aggregation"
    );
    assert_ne!(*img.get_pixel(x - 20, l.y_at(1.0)), label_color(0));
    assert_eq!(*img.get_pixel(x - 20, l.y_at(0.0)), label_color(0));
}

#[test]
fn many_labels_wrap_in_the_legend() {
    let labels: Vec<String> = (0..50).map(|i| format!("label{i}")).collect();
    let posteriors: Vec<f32> = (0..100 * 50).map(|i| (i % 50) as f32 / 50.0).collect();
    let input = scores_only("fifty", &posteriors, &labels);
    let l = layout(&input).unwrap();
    let img = render(&input).unwrap();
    let swatch_row = |i: usize| {
        (l.legend.top..l.legend.bottom)
            .find(|&y| (0..l.width).any(|x| *img.get_pixel(x, y) == label_color(i)))
    };
    let (first, last) = (swatch_row(0), swatch_row(49));
    assert!(
        first.is_some() && last.is_some(),
        "both ends of the legend are drawn"
    );
    assert!(last > first, "the legend wraps onto more rows");
}

#[test]
fn single_label_and_unknown_event_labels() {
    let labels = vec!["only".to_string()];
    let posteriors = vec![0.5f32; 50];
    let events = vec![("other".to_string(), 10.1, 10.2, 0.5)];
    let input = PlotInput {
        time_offset_s: 10.0,
        events: &events,
        ..scores_only("one", &posteriors, &labels)
    };
    let l = layout(&input).unwrap();
    assert_eq!(l.lane_labels, ["only", "other"]);
    let img = render(&input).unwrap();
    let row = l.lane_row(1);
    let x = l.x_at(10.15) as u32;
    assert!((row.top..row.bottom).any(|y| *img.get_pixel(x, y) == label_color(1)));
}

#[test]
fn zero_frames_render_a_valid_image() {
    let img = render(&empty_input()).unwrap();
    assert_eq!((img.width(), img.height()), (MIN_WIDTH, HEIGHT));
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 100))
        .count();
    assert!(
        dark > 100,
        "title and `no frames` are written ({dark} dark px)"
    );
}

#[test]
fn nan_and_infinite_values_do_not_panic() {
    let features = vec![f32::NAN; 100 * 8];
    let posteriors = vec![f32::NAN; 100 * 2];
    let labels = vec!["a".to_string(), "b".to_string()];
    let events = vec![
        ("a".to_string(), f64::NAN, 1.0, f32::NAN),
        ("b".to_string(), 0.5, f64::INFINITY, 0.5),
        ("a".to_string(), 0.8, 0.2, 0.9),   // reversed
        ("b".to_string(), -5.0, 99.0, 0.9), // beyond both ends
        ("a".to_string(), 50.0, 60.0, 0.9), // entirely after
    ];
    let thresholds = [f32::NAN, 2.0];
    let mut input = PlotInput {
        title: "nan \u{e9}\u{1F600}",
        features: &features,
        n_bins: 8,
        posteriors: &posteriors,
        labels: &labels,
        frame_period_s: PERIOD,
        time_offset_s: -0.3,
        events: &events,
        thresholds: Some(&thresholds),
    };
    render(&input).unwrap();

    let mut mixed = features.clone();
    mixed[3] = f32::NEG_INFINITY;
    mixed[4] = f32::INFINITY;
    mixed[5] = 1.0;
    input.features = &mixed;
    render(&input).unwrap();

    let constant = vec![3.0f32; 100 * 8];
    input.features = &constant;
    render(&input).unwrap();
}

#[test]
fn mismatched_shapes_are_errors() {
    let s = Synthetic::new();
    let base = s.input();
    let shape = |input: PlotInput| matches!(render(&input), Err(Error::Shape(_)));

    assert!(shape(PlotInput {
        features: &s.features[1..],
        ..base
    }));
    assert!(shape(PlotInput { n_bins: 0, ..base }));
    assert!(shape(PlotInput {
        posteriors: &s.posteriors[1..],
        ..base
    }));
    assert!(shape(PlotInput {
        labels: &s.labels[..0],
        ..base
    }));
    assert!(shape(PlotInput {
        thresholds: Some(&s.thresholds[..2]),
        ..base
    }));
    assert!(matches!(
        layout(&PlotInput { n_bins: 7, ..base }),
        Err(Error::Shape(_))
    ));

    let config = |input: PlotInput| matches!(render(&input), Err(Error::InvalidConfig { .. }));
    assert!(config(PlotInput {
        frame_period_s: 0.0,
        ..base
    }));
    assert!(config(PlotInput {
        frame_period_s: f64::NAN,
        ..base
    }));
    assert!(config(PlotInput {
        time_offset_s: f64::INFINITY,
        ..base
    }));
}

#[test]
fn png_round_trips_through_a_file() {
    let s = Synthetic::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plot.png");
    plot::write_png(&path, &s.input()).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back, render(&s.input()).unwrap());

    let missing = dir.path().join("no/such/dir/plot.png");
    match plot::write_png(&missing, &s.input()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

/// Writes a realistic example to `/tmp/plot_example.png` for looking at:
/// `cargo test --test plot -- --ignored`.
#[test]
#[ignore]
fn write_example() {
    let (frames, bins) = (300usize, 40usize);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 40) as f32 / (1u64 << 24) as f32
    };
    let bump = |t: f32, centre: f32, width: f32| (-((t - centre) / width).powi(2)).exp();
    let mut features = Vec::with_capacity(frames * bins);
    for f in 0..frames {
        let t = f as f32 * 0.01;
        for b in 0..bins {
            let speech = if (0.4..1.3).contains(&t) {
                bump(b as f32, 8.0 + 3.0 * (t * 9.0).sin(), 3.0)
            } else {
                0.0
            };
            let whistle = if (1.8..2.6).contains(&t) {
                bump(b as f32, 30.0, 1.2)
            } else {
                0.0
            };
            let knock = bump(t, 2.05, 0.02) * (1.0 - b as f32 / bins as f32);
            let energy = 0.02 + 0.3 * noise() + 4.0 * speech + 5.0 * whistle + 3.0 * knock;
            features.push(energy.ln());
        }
    }
    let labels: Vec<String> = ["speech", "whistle", "door_knock"]
        .map(String::from)
        .to_vec();
    let mut posteriors = Vec::with_capacity(frames * 3);
    for f in 0..frames {
        let t = f as f32 * 0.01;
        posteriors.push((0.05 + 0.9 * bump(t, 0.85, 0.4) + 0.05 * noise()).min(1.0));
        posteriors.push((0.03 + 0.85 * bump(t, 2.2, 0.35) + 0.05 * noise()).min(1.0));
        posteriors.push((0.02 + 0.7 * bump(t, 2.06, 0.06) + 0.04 * noise()).min(1.0));
    }
    let events = vec![
        ("speech".to_string(), 0.42, 1.27, 0.93),
        ("whistle".to_string(), 1.86, 2.55, 0.87),
        ("door_knock".to_string(), 2.01, 2.11, 0.71),
    ];
    let thresholds = [0.5, 0.5, 0.4];
    let input = PlotInput {
        title: "kitchen_recording_0042.wav",
        features: &features,
        n_bins: bins,
        posteriors: &posteriors,
        labels: &labels,
        frame_period_s: 0.01,
        time_offset_s: 0.0,
        events: &events,
        thresholds: Some(&thresholds),
    };
    plot::write_png(std::path::Path::new("/tmp/plot_example.png"), &input).unwrap();
}
