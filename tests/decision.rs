//! The decision stage on hand-made posterior sequences whose events are known
//! exactly, against a direct reference implementation, across chunkings, and
//! over a 10-hour stream.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use seqrec::Error;
use seqrec::bundle::DecisionSection;
use seqrec::decision::{Decider, DecisionConfig, Event};

// ---------------------------------------------------------------------------
// Allocation counting (this test binary only), per thread so that tests
// running in parallel do not disturb each other.

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

// ---------------------------------------------------------------------------
// Helpers.

const P: f64 = 0.01; // 100 frames per second

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// `n_frames` frames of `n_labels` zeros, with `value` on `label` for frames `from..to`.
fn pulses(n_frames: usize, n_labels: usize, spec: &[(usize, usize, usize, f32)]) -> Vec<f32> {
    let mut v = vec![0.0; n_frames * n_labels];
    for &(label, from, to, value) in spec {
        for i in from..to {
            v[i * n_labels + label] = value;
        }
    }
    v
}

fn decider(sec: &DecisionSection, labels: &[&str], period: f64, offset: f64) -> Decider {
    let labels = names(labels);
    let cfg = DecisionConfig::from_section(sec, &labels, period).unwrap();
    Decider::new(cfg, labels, period, offset)
}

/// Pushes everything in one call, then finishes.
fn run(sec: &DecisionSection, labels: &[&str], posteriors: &[f32]) -> Vec<Event> {
    let mut d = decider(sec, labels, P, 0.0);
    let mut ev = Vec::new();
    d.push(posteriors, &mut ev).unwrap();
    d.finish(&mut ev);
    ev
}

#[track_caller]
fn assert_events(actual: &[Event], expected: &[(&str, f64, f64, f32)]) {
    let got: Vec<(&str, f64, f64, f32)> = actual
        .iter()
        .map(|e| (e.label.as_str(), e.start_s, e.end_s, e.score))
        .collect();
    let same = got.len() == expected.len()
        && got.iter().zip(expected).all(|(g, e)| {
            g.0 == e.0 && (g.1 - e.1).abs() < 1e-9 && (g.2 - e.2).abs() < 1e-9 && g.3 == e.3
        });
    assert!(same, "events\n  got      {got:?}\n  expected {expected:?}");
}

fn sec() -> DecisionSection {
    DecisionSection::default()
}

// ---------------------------------------------------------------------------
// Hand-made sequences.

#[test]
fn square_pulse_gives_exact_event() {
    let post = pulses(50, 1, &[(0, 10, 30, 0.9)]);
    let ev = run(&sec(), &["a"], &post);
    assert_events(&ev, &[("a", 0.10, 0.30, 0.9)]);
}

#[test]
fn event_times_start_at_the_offset() {
    let post = pulses(50, 1, &[(0, 10, 30, 0.9)]);
    let mut d = decider(&sec(), &["a"], 0.02, 0.0125);
    let mut ev = Vec::new();
    d.push(&post, &mut ev).unwrap();
    assert_events(&ev, &[("a", 0.0125 + 0.2, 0.0125 + 0.6, 0.9)]);
    assert_eq!(d.time_of(3), 0.0125 + 3.0 * 0.02);
}

#[test]
fn threshold_is_inclusive_and_score_is_the_maximum() {
    // 0.5 exactly starts (>= on); the event ends at the first score < 0.5.
    let mut post = pulses(40, 1, &[(0, 5, 20, 0.5)]);
    post[12] = 0.75;
    post[13] = 0.625;
    let ev = run(&sec(), &["a"], &post);
    assert_events(&ev, &[("a", 0.05, 0.20, 0.75)]);
    // Just below: nothing.
    let post = pulses(40, 1, &[(0, 5, 20, 0.49999)]);
    assert!(run(&sec(), &["a"], &post).is_empty());
}

#[test]
fn smoothing_delays_and_extends_as_computed_by_hand() {
    // W = 0.05 s / 0.01 s = 5 frames. Pulse of 0.9 on frames 10..30.
    // Frame 10+k (k < 5) averages k+1 pulse frames: 0.9 (k+1) / 5 >= 0.5
    // first at k = 2 (0.54): start 0.12. Frame 30+k averages 4-k pulse frames:
    // 0.9 (4-k) / 5 < 0.5 first at k = 2 (0.36): end 0.32.
    let s = DecisionSection {
        smoothing_s: 0.05,
        ..sec()
    };
    let post = pulses(60, 1, &[(0, 10, 30, 0.9)]);
    let ev = run(&s, &["a"], &post);
    assert_events(&ev, &[("a", 0.12, 0.32, 0.9)]);

    // The smoothed trace, frame by frame.
    let mut d = decider(&s, &["a"], P, 0.0);
    let mut ev = Vec::new();
    let mut trace = Vec::new();
    for f in post.chunks(1) {
        d.push(f, &mut ev).unwrap();
        trace.push(d.last_smoothed()[0]);
    }
    for (i, &v) in trace.iter().enumerate() {
        let lo = i.saturating_sub(4);
        let inside = (lo..=i).filter(|k| (10..30).contains(k)).count();
        let expect = 0.9 * inside as f64 / 5.0;
        assert!(
            (v as f64 - expect).abs() < 1e-6,
            "frame {i}: {v} vs {expect}"
        );
    }
}

#[test]
fn first_frames_average_over_what_exists() {
    // W = 4: the first frames are not diluted by imaginary zeros.
    let s = DecisionSection {
        smoothing_s: 0.04,
        ..sec()
    };
    let mut d = decider(&s, &["a"], P, 0.0);
    let mut ev = Vec::new();
    let mut trace = Vec::new();
    for v in [0.8f32, 0.4, 0.6, 0.2, 1.0, 0.0] {
        d.push(&[v], &mut ev).unwrap();
        trace.push(d.last_smoothed()[0]);
    }
    let expect = [0.8, 0.6, 0.6, 0.5, 0.55, 0.45];
    for (v, e) in trace.iter().zip(expect) {
        assert!((v - e).abs() < 1e-6, "{trace:?}");
    }
    // Frame 0 already starts an event (0.8 >= 0.5); it ends at frame 5 (0.45).
    assert_events(&ev, &[("a", 0.0, 0.05, 0.8)]);
}

#[test]
fn hysteresis_keeps_an_event_through_a_dip_above_off() {
    let s = DecisionSection {
        threshold: 0.6,
        off_threshold: Some(0.3),
        ..sec()
    };
    let mut post = pulses(50, 1, &[(0, 10, 30, 0.9)]);
    post[18..22].fill(0.4);
    assert_events(&run(&s, &["a"], &post), &[("a", 0.10, 0.30, 0.9)]);

    // Without hysteresis the same dip splits it.
    let s2 = DecisionSection {
        threshold: 0.6,
        ..sec()
    };
    assert_events(
        &run(&s2, &["a"], &post),
        &[("a", 0.10, 0.18, 0.9), ("a", 0.22, 0.30, 0.9)],
    );

    // Rising through the gap between off and on does not start an event.
    let post = pulses(50, 1, &[(0, 10, 30, 0.5)]);
    assert!(run(&s, &["a"], &post).is_empty());
}

#[test]
fn a_dip_below_off_ends_the_event() {
    let s = DecisionSection {
        threshold: 0.6,
        off_threshold: Some(0.3),
        ..sec()
    };
    let mut post = pulses(50, 1, &[(0, 10, 30, 0.9)]);
    post[18..22].fill(0.2);
    assert_events(
        &run(&s, &["a"], &post),
        &[("a", 0.10, 0.18, 0.9), ("a", 0.22, 0.30, 0.9)],
    );
    // A dip to exactly `off` does not end it (ends at a score < off).
    post[18..22].fill(0.3);
    assert_events(&run(&s, &["a"], &post), &[("a", 0.10, 0.30, 0.9)]);
}

#[test]
fn min_duration_drops_short_blips() {
    let s = DecisionSection {
        min_duration_s: 0.05,
        ..sec()
    };
    // 3 frames: dropped; exactly 5 frames (0.05 s): kept; 20 frames: kept.
    let post = pulses(
        100,
        1,
        &[(0, 10, 13, 0.9), (0, 30, 35, 0.8), (0, 50, 70, 0.7)],
    );
    assert_events(
        &run(&s, &["a"], &post),
        &[("a", 0.30, 0.35, 0.8), ("a", 0.50, 0.70, 0.7)],
    );
    // 4 frames: dropped.
    let post = pulses(100, 1, &[(0, 30, 34, 0.8)]);
    assert!(run(&s, &["a"], &post).is_empty());
}

#[test]
fn refractory_suppresses_a_second_pulse_and_allows_a_third() {
    let s = DecisionSection {
        refractory_s: 0.5,
        ..sec()
    };
    // First ends at 0.30: no start before 0.80. Second (0.40..0.60) is
    // suppressed; third starts at 0.80 exactly: allowed.
    let post = pulses(
        120,
        1,
        &[(0, 10, 30, 0.9), (0, 40, 60, 0.8), (0, 80, 100, 0.7)],
    );
    assert_events(
        &run(&s, &["a"], &post),
        &[("a", 0.10, 0.30, 0.9), ("a", 0.80, 1.00, 0.7)],
    );
    // A third pulse one frame earlier is suppressed too.
    let post = pulses(
        120,
        1,
        &[(0, 10, 30, 0.9), (0, 40, 60, 0.8), (0, 79, 80, 0.7)],
    );
    assert_events(&run(&s, &["a"], &post), &[("a", 0.10, 0.30, 0.9)]);
    // A pulse that straddles the end of the period starts when it ends.
    let post = pulses(120, 1, &[(0, 10, 30, 0.9), (0, 70, 90, 0.6)]);
    assert_events(
        &run(&s, &["a"], &post),
        &[("a", 0.10, 0.30, 0.9), ("a", 0.80, 0.90, 0.6)],
    );
}

#[test]
fn refractory_is_per_label_and_only_after_emitted_events() {
    let s = DecisionSection {
        refractory_s: 0.5,
        min_duration_s: 0.05,
        ..sec()
    };
    // Label a: a dropped 2-frame blip does not block the pulse after it.
    // Label b: not blocked by a's event.
    let post = pulses(
        100,
        2,
        &[(0, 10, 12, 0.9), (0, 20, 40, 0.9), (1, 45, 60, 0.8)],
    );
    assert_events(
        &run(&s, &["a", "b"], &post),
        &[("a", 0.20, 0.40, 0.9), ("b", 0.45, 0.60, 0.8)],
    );
}

#[test]
fn ignored_labels_never_produce_events() {
    let s = DecisionSection {
        ignore: vec!["_silence_".into()],
        min_silence_s: 0.0,
        pad_s: 0.0,
        ..sec()
    };
    let post = pulses(50, 2, &[(0, 0, 50, 0.95), (1, 10, 30, 0.9)]);
    let mut d = decider(&s, &["_silence_", "yes"], P, 0.0);
    let mut ev = Vec::new();
    d.push(&post, &mut ev).unwrap();
    // Still smoothed, for displays.
    assert_eq!(d.last_smoothed(), &[0.95, 0.0]);
    d.finish(&mut ev);
    assert_events(&ev, &[("yes", 0.10, 0.30, 0.9)]);
}

#[test]
fn labels_overlap_and_ties_are_ordered_by_label_index() {
    // a: 10..40, b: 20..30, c: 25..50 (still open at the end, 50 frames),
    // d: 5..30 (ends with b). Order by end, then label index.
    let post = pulses(
        50,
        4,
        &[
            (0, 10, 40, 0.9),
            (1, 20, 30, 0.8),
            (2, 25, 50, 0.7),
            (3, 5, 30, 0.6),
        ],
    );
    let ev = run(&sec(), &["a", "b", "c", "d"], &post);
    assert_events(
        &ev,
        &[
            ("b", 0.20, 0.30, 0.8),
            ("d", 0.05, 0.30, 0.6),
            ("a", 0.10, 0.40, 0.9),
            ("c", 0.25, 0.50, 0.7),
        ],
    );
}

#[test]
fn finish_closes_open_events_after_the_last_frame_and_resets() {
    let s = DecisionSection {
        min_duration_s: 0.05,
        ..sec()
    };
    // a open since frame 10, b open since frame 47 (3 frames: too short).
    let post = pulses(50, 2, &[(0, 10, 50, 0.9), (1, 47, 50, 0.9)]);
    let mut d = decider(&s, &["a", "b"], P, 0.0);
    let mut ev = Vec::new();
    d.push(&post, &mut ev).unwrap();
    assert!(ev.is_empty());
    assert_eq!(d.frames(), 50);
    d.finish(&mut ev);
    assert_events(&ev, &[("a", 0.10, 0.50, 0.9)]);
    assert_eq!(d.frames(), 0);
    // Nothing left open: a second finish adds nothing.
    d.finish(&mut ev);
    assert_eq!(ev.len(), 1);
}

#[test]
fn reset_forgets_an_open_event() {
    let mut d = decider(&sec(), &["a"], P, 0.0);
    let mut ev = Vec::new();
    d.push(&[0.0, 0.0, 1.0, 1.0, 1.0], &mut ev).unwrap();
    assert_eq!(d.frames(), 5);
    d.reset();
    assert_eq!(d.frames(), 0);
    assert_eq!(d.last_smoothed(), &[0.0]);
    d.push(&[0.0; 10], &mut ev).unwrap();
    d.finish(&mut ev);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn reset_forgets_the_history_and_the_refractory_period() {
    let s = DecisionSection {
        smoothing_s: 0.05,
        refractory_s: 10.0,
        ..sec()
    };
    let mut d = decider(&s, &["a"], P, 0.0);
    let mut ev = Vec::new();
    // Ends at frame 32 (see the smoothing test): blocked until frame 1032.
    d.push(&pulses(40, 1, &[(0, 10, 30, 0.9)]), &mut ev)
        .unwrap();
    assert_eq!(ev.len(), 1);
    d.reset();
    // A lone 0.6 frame averages over itself (the zeros before the reset are
    // forgotten) and starts an event at once (no refractory period); the
    // next frame averages to 0.3 and ends it. Times restart from the offset.
    d.push(&[0.6, 0.0], &mut ev).unwrap();
    assert_eq!(d.last_smoothed(), &[0.3]);
    assert_events(&ev, &[("a", 0.12, 0.32, 0.9), ("a", 0.0, 0.01, 0.6)]);
}

#[test]
fn bad_chunks_are_refused_without_consuming_anything() {
    let mut d = decider(&sec(), &["a", "b"], P, 0.0);
    let mut ev = Vec::new();
    d.push(&[0.9, 0.0, 0.9, 0.0], &mut ev).unwrap();
    assert!(matches!(
        d.push(&[0.1, 0.2, 0.3], &mut ev),
        Err(Error::Shape(_))
    ));
    let err = d.push(&[0.0, 0.0, 0.1, f32::NAN], &mut ev).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { name, .. } if name == "posteriors"),
        "{err}"
    );
    assert!(err.to_string().contains("label `b`"), "{err}");
    assert!(d.push(&[f32::INFINITY, 0.0], &mut ev).is_err());
    assert_eq!(d.frames(), 2);
    assert_eq!(d.last_smoothed(), &[0.9, 0.0]);
    d.push(&[0.0, 0.0], &mut ev).unwrap();
    assert_events(&ev, &[("a", 0.0, 0.02, 0.9)]);
}

#[test]
fn config_from_section_feeds_the_decider() {
    let s = DecisionSection {
        threshold: 0.7,
        thresholds: BTreeMap::from([("b".to_string(), 0.3)]),
        ..sec()
    };
    // 0.5 on both: only b (threshold 0.3) fires.
    let post = pulses(40, 2, &[(0, 10, 20, 0.5), (1, 10, 20, 0.5)]);
    assert_events(&run(&s, &["a", "b"], &post), &[("b", 0.10, 0.20, 0.5)]);
    let err = DecisionConfig::from_section(&s, &names(&["a"]), P).unwrap_err();
    assert!(err.to_string().contains("decision.thresholds.b"), "{err}");
}

#[test]
fn push_does_not_allocate_per_frame() {
    let s = DecisionSection {
        smoothing_s: 0.3,
        ..sec()
    };
    let mut d = decider(&s, &["a", "b", "c"], P, 0.0);
    let post: Vec<f32> = (0..3 * 5000)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-4)
        .collect();
    let mut ev = Vec::with_capacity(16);
    let before = allocs();
    for chunk in post.chunks(3 * 7) {
        d.push(chunk, &mut ev).unwrap();
    }
    let _ = d.last_smoothed();
    d.reset();
    assert_eq!(allocs() - before, 0, "allocations while pushing frames");
    assert!(ev.is_empty());
}

#[test]
fn tone_fixture_matches_the_python_reference() {
    // scripts/make_tone_bundle.py ran its own `decide` over these posteriors
    // (frame i at 0.016 + 0.01 i s) and wrote the events, rounded to 1 µs.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = seqrec::bundle::Bundle::load(root.join("fixtures/bundles/tone")).unwrap();
    let clips = root.join("fixtures/clips/tone");
    let post = seqrec::npy::read_f32(clips.join("beeps_whistle.posteriors.npy")).unwrap();
    assert_eq!(post.shape, vec![post.shape[0], bundle.labels.len()]);
    let text = std::fs::read_to_string(clips.join("reference_events.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let want = json["beeps_whistle.wav"].as_array().unwrap();

    let cfg = DecisionConfig::from_section(&bundle.decision, &bundle.labels, 0.01).unwrap();
    let mut d = Decider::new(cfg, bundle.labels.clone(), 0.01, 0.016);
    let mut ev = Vec::new();
    // Live-sized chunks of 7 frames.
    for chunk in post.data.chunks(7 * bundle.labels.len()) {
        d.push(chunk, &mut ev).unwrap();
    }
    d.finish(&mut ev);
    ev.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    assert_eq!(ev.len(), want.len(), "{ev:?}");
    assert!(!ev.is_empty());
    for (g, w) in ev.iter().zip(want) {
        assert_eq!(g.label, w["label"].as_str().unwrap(), "{ev:?}");
        let (s, e) = (w["start_s"].as_f64().unwrap(), w["end_s"].as_f64().unwrap());
        assert!(
            (g.start_s - s).abs() < 1e-6 && (g.end_s - e).abs() < 1e-6,
            "got {g:?}, want {w}"
        );
    }
}

// ---------------------------------------------------------------------------
// A 10-hour stream: the running sum stays a moving average.

#[test]
fn ten_hours_without_drift() {
    const N_LABELS: usize = 3;
    const FRAMES: usize = 10 * 3600 * 100;
    const CHUNK: usize = 100_000;
    let s = DecisionSection {
        smoothing_s: 0.37, // 37 frames: not a power of two
        threshold: 0.6,
        off_threshold: Some(0.4),
        ..sec()
    };
    let w = 37;
    let mut d = decider(&s, &["a", "b", "c"], P, 0.0);
    let mut ev = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut chunk = vec![0.0f32; CHUNK * N_LABELS];
    let mut worst = 0.0f64;
    for c in 0..FRAMES / CHUNK {
        // Label a: uniform noise. b: noise on a slow square wave (so events
        // happen). c: small values, where relative drift shows most.
        for (i, row) in chunk.chunks_exact_mut(N_LABELS).enumerate() {
            let frame = c * CHUNK + i;
            row[0] = next();
            row[1] = 0.5 * next()
                + if (frame / 500).is_multiple_of(2) {
                    0.5
                } else {
                    0.0
                };
            row[2] = 1e-3 * next();
        }
        d.push(&chunk, &mut ev).unwrap();
        for (j, &got) in d.last_smoothed().iter().enumerate() {
            let direct: f64 = chunk[(CHUNK - w) * N_LABELS..]
                .chunks_exact(N_LABELS)
                .map(|r| f64::from(r[j]))
                .sum::<f64>()
                / w as f64;
            let e = (f64::from(got) - direct).abs();
            worst = worst.max(e);
            assert!(
                e <= 1e-6,
                "chunk {c}, label {j}: smoothed {got} vs direct {direct}"
            );
        }
    }
    assert_eq!(d.frames(), FRAMES as u64);
    // Label b's square wave (period 10 s) gives ~3600 events; they are in
    // order and their times are on the frame grid.
    let b: Vec<&Event> = ev.iter().filter(|e| e.label == "b").collect();
    assert!(b.len() > 3000, "{} events", b.len());
    assert!(ev.windows(2).all(|p| p[0].end_s <= p[1].end_s));
    let last = b.last().unwrap();
    let frames = last.end_s / P;
    assert!((frames - frames.round()).abs() < 1e-6, "{last:?}");
    eprintln!("worst |smoothed - direct| = {worst:e}");
}

// ---------------------------------------------------------------------------
// Properties.

/// Piecewise-constant posteriors: segments of 1..40 frames with one level
/// (k/8) per label, so that sums are exact in floating point.
fn segments(n_labels: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        (1usize..40, prop::collection::vec(0u8..=8, n_labels)),
        1..15,
    )
    .prop_map(|segs| {
        let mut v = Vec::new();
        for (len, levels) in segs {
            for _ in 0..len {
                v.extend(levels.iter().map(|&k| f32::from(k) / 8.0));
            }
        }
        v
    })
}

/// Pushes `post` in chunks of the given frame counts (cycled), then finishes.
fn run_chunked(
    cfg: &DecisionConfig,
    labels: &[String],
    period: f64,
    offset: f64,
    post: &[f32],
    chunks: &[usize],
) -> (Vec<Event>, Vec<f32>, u64) {
    let n = labels.len();
    let mut d = Decider::new(cfg.clone(), labels.to_vec(), period, offset);
    let mut ev = Vec::new();
    let mut at = 0;
    // The trailing 1 guarantees progress when every size is 0.
    for &c in chunks.iter().chain([1].iter()).cycle() {
        if at >= post.len() {
            break;
        }
        let end = at.saturating_add(c.saturating_mul(n)).min(post.len());
        d.push(&post[at..end], &mut ev).unwrap();
        at = end;
    }
    let smoothed = d.last_smoothed().to_vec();
    let frames = d.frames();
    d.finish(&mut ev);
    (ev, smoothed, frames)
}

/// The semantics written out directly: a moving average recomputed at every
/// frame, and the rules in seconds.
#[allow(clippy::too_many_arguments)]
fn reference(
    post: &[f32],
    labels: &[String],
    w: usize,
    on: &[f32],
    off: &[f32],
    min_s: f64,
    refr_s: f64,
    ignore: &[bool],
    period: f64,
    offset: f64,
) -> Vec<Event> {
    let n = labels.len();
    let frames = post.len() / n;
    let t = |i: usize| offset + i as f64 * period;
    let mut out: Vec<(usize, usize, Event)> = Vec::new();
    for j in 0..n {
        if ignore[j] {
            continue;
        }
        let mut open: Option<(usize, f32)> = None;
        let mut last_end: Option<f64> = None;
        let mut close = |start: usize, end: usize, max: f32, last_end: &mut Option<f64>| {
            if t(end) - t(start) >= min_s {
                out.push((
                    end,
                    j,
                    Event {
                        label: labels[j].clone(),
                        start_s: t(start),
                        end_s: t(end),
                        score: max,
                    },
                ));
                *last_end = Some(t(end));
            }
        };
        for i in 0..frames {
            let lo = (i + 1).saturating_sub(w);
            let sum: f64 = (lo..=i).map(|k| f64::from(post[k * n + j])).sum();
            let s = (sum / (i + 1 - lo) as f64) as f32;
            match open {
                Some((start, max)) => {
                    if s < off[j] {
                        open = None;
                        close(start, i, max, &mut last_end);
                    } else {
                        open = Some((start, max.max(s)));
                    }
                }
                None => {
                    if s >= on[j] && last_end.is_none_or(|e| t(i) >= e + refr_s) {
                        open = Some((i, s));
                    }
                }
            }
        }
        if let Some((start, max)) = open {
            close(start, frames, max, &mut last_end);
        }
    }
    out.sort_by_key(|(end, j, _)| (*end, *j));
    out.into_iter().map(|(_, _, e)| e).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Pushing the same posteriors in any chunking gives identical events
    /// and smoothed scores (bit for bit).
    #[test]
    fn chunking_does_not_change_anything(
        (post, w) in (
            prop::collection::vec(0.0f32..1.0, 3..900),
            1usize..20,
        ),
        on in 0.3f32..0.7,
        hyst in 0.0f32..0.2,
        min_frames in 0u32..4,
        refr_frames in 0u32..10,
        chunks in prop::collection::vec(0usize..50, 1..20), // 0: empty pushes
    ) {
        let labels = names(&["a", "b", "c"]);
        let n = labels.len();
        let post = &post[..post.len() / n * n];
        let cfg = DecisionConfig {
            smoothing_frames: w,
            on: vec![on, on + 0.1, on - 0.1],
            off: vec![on - hyst, on + 0.1 - hyst, on - 0.1],
            min_duration_s: f64::from(min_frames) * P,
            refractory_s: f64::from(refr_frames) * P,
            ignore: vec![false, false, false],
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let whole = run_chunked(&cfg, &labels, P, 0.0, post, &[usize::MAX / 8]);
        let pieces = run_chunked(&cfg, &labels, P, 0.0, post, &chunks);
        prop_assert_eq!(&whole, &pieces);
        let single = run_chunked(&cfg, &labels, P, 0.0, post, &[1]);
        prop_assert_eq!(&whole, &single);
    }

    /// The streaming decider agrees exactly with the direct reference. The
    /// frame period (1/64 s), durations and levels are dyadic so that both
    /// compute bit-identical sums and times.
    #[test]
    fn matches_the_reference(
        post in segments(3),
        w in 1usize..12,
        on in prop::collection::vec(1u8..=8, 3),
        gap in prop::collection::vec(0u8..=3, 3),
        min_frames in 0u32..6,
        refr_frames in 0u32..40,
        ignore in prop::collection::vec(prop::bool::weighted(0.2), 3),
        chunks in prop::collection::vec(1usize..30, 1..10),
    ) {
        let labels = names(&["x", "y", "z"]);
        let period = 1.0 / 64.0;
        let offset = 0.25;
        let on: Vec<f32> = on.iter().map(|&k| f32::from(k) / 8.0).collect();
        let off: Vec<f32> = on
            .iter()
            .zip(&gap)
            .map(|(&o, &g)| (o - f32::from(g) / 8.0).max(0.0))
            .collect();
        let min_s = f64::from(min_frames) * period;
        let refr_s = f64::from(refr_frames) * period;
        let cfg = DecisionConfig {
            smoothing_frames: w,
            on: on.clone(),
            off: off.clone(),
            min_duration_s: min_s,
            refractory_s: refr_s,
            ignore: ignore.clone(),
            min_silence_s: 0.0,
            pad_s: 0.0,
        };
        let (got, _, _) = run_chunked(&cfg, &labels, period, offset, &post, &chunks);
        let expected = reference(
            &post, &labels, w, &on, &off, min_s, refr_s, &ignore, period, offset,
        );
        prop_assert_eq!(got, expected);
    }
}

/// Silero-style ending: an event ends only after `min_silence_s` below the
/// off threshold (a score back at `on` cancels the wait, one in between does
/// not), and events are padded by `pad_s` on both sides.
#[test]
fn min_silence_and_padding() {
    use seqrec::decision::{Decider, DecisionConfig};
    let period = 0.032; // 512 samples at 16 kHz
    let cfg = DecisionConfig {
        smoothing_frames: 1,
        on: vec![0.5],
        off: vec![0.35],
        min_duration_s: 0.0,
        refractory_s: 0.0,
        ignore: vec![false],
        min_silence_s: 0.1, // 3.125 frames -> 4
        pad_s: 0.03,
    };
    let mut p = vec![0.1f32; 3];
    p.extend([0.9; 7]); // frames 3..10
    p.extend([0.2, 0.4]); // 10 starts the wait, 11 (between off and on) does not cancel it
    p.push(0.9); // 12 cancels it
    p.extend([0.1; 4]); // 13..=16: silence since 13, not yet 4 frames
    let mut d = Decider::new(cfg.clone(), vec!["speech".into()], period, 0.0);
    let mut ev = Vec::new();
    d.push(&p, &mut ev).unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    d.push(&[0.1], &mut ev).unwrap(); // frame 17: 4 frames since 13
    assert_eq!(ev.len(), 1);
    assert!(
        (ev[0].start_s - (3.0 * period - 0.03)).abs() < 1e-9,
        "{ev:?}"
    );
    assert!(
        (ev[0].end_s - (13.0 * period + 0.03)).abs() < 1e-9,
        "{ev:?}"
    );

    // The wait ends only on a frame below `off`: 4 frames after the quiet
    // run began, a score between off and on keeps the event open.
    let mut d = Decider::new(cfg.clone(), vec!["speech".into()], period, 0.0);
    let mut ev = Vec::new();
    d.push(&[0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.4], &mut ev)
        .unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    d.push(&[0.2], &mut ev).unwrap();
    assert_eq!(ev.len(), 1);
    assert!((ev[0].end_s - (2.0 * period + 0.03)).abs() < 1e-9, "{ev:?}");

    // An open event (even one waiting out its silence) ends with the stream,
    // after the last frame, without end padding.
    let mut d = Decider::new(cfg, vec!["speech".into()], period, 0.0);
    let mut ev = Vec::new();
    d.push(&[0.9, 0.9, 0.9, 0.1, 0.1], &mut ev).unwrap();
    d.finish(&mut ev);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].start_s.abs() < 1e-12, "start clamped at 0: {ev:?}");
    assert!((ev[0].end_s - 5.0 * period).abs() < 1e-9, "{ev:?}");
}
