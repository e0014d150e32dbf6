//! Microphone capture: the callback's work and the reading side without hardware, and a real
//! capture from the virtual microphone of `scripts/vmic.sh` when one is running.
//!
//! Live test:
//! ```sh
//! scripts/vmic.sh start >/dev/null
//! SEQREC_VMIC_ENV=$PWD/.vmic/env cargo test --test mic -- --nocapture
//! scripts/vmic.sh stop
//! ```
//! Without `SEQREC_VMIC_ENV` the live test prints why it is skipped and passes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seqrec::Error;
use seqrec::source::mic::{
    CaptureReader, CaptureWriter, MicOptions, Microphone, QueueConfig, capture_queue,
    list_input_devices,
};

// ---------------------------------------------------------------------------------------------
// An allocator that counts the allocations and frees made by threads that ask to be watched, to
// check that the callback's work never allocates or frees.

struct CountingAlloc;

static WATCHED_OPS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

fn note_op() {
    if WATCHED.try_with(Cell::get).unwrap_or(false) {
        WATCHED_OPS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; the bookkeeping neither allocates nor panics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_op();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_op();
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_op();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_op();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns how many allocations/frees this thread made meanwhile.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = WATCHED_OPS.load(Ordering::Relaxed);
    WATCHED.with(|w| w.set(true));
    f();
    WATCHED.with(|w| w.set(false));
    WATCHED_OPS.load(Ordering::Relaxed) - before
}

// ---------------------------------------------------------------------------------------------
// Hardware-free: conversion, downmix, chunking, drop-oldest, errors, resampling, timing.

fn queue(
    channels: usize,
    native_rate: u32,
    target_rate: u32,
    chunk_frames: usize,
    queue_chunks: usize,
) -> (CaptureWriter, CaptureReader) {
    capture_queue(&QueueConfig {
        name: "test-device".into(),
        channels,
        native_rate,
        target_rate,
        chunk_frames,
        queue_chunks,
        stall_timeout: None,
    })
    .unwrap()
}

/// Everything available now, chunk by chunk.
fn drain(reader: &mut CaptureReader) -> Vec<Vec<f32>> {
    let mut chunks = Vec::new();
    loop {
        let mut out = Vec::new();
        match reader.read(&mut out, Duration::ZERO).unwrap() {
            0 => return chunks,
            _ => chunks.push(out),
        }
    }
}

#[test]
fn converts_every_sample_format_and_averages_channels() {
    let t0 = Instant::now();

    // i16 stereo: average of the two channels, scaled by 1/32768.
    let (mut w, mut r) = queue(2, 16_000, 16_000, 2, 4);
    w.write(&[16384i16, 0, -32768, 32767], t0);
    assert_eq!(drain(&mut r), vec![vec![0.25, -0.5 / 32768.0]]);

    // u16 mono: (x - 32768) / 32768, copied exactly.
    let (mut w, mut r) = queue(1, 16_000, 16_000, 3, 4);
    w.write(&[32768u16, 0, 49152], t0);
    assert_eq!(drain(&mut r), vec![vec![0.0, -1.0, 0.5]]);

    // f32 with 3 channels.
    let (mut w, mut r) = queue(3, 16_000, 16_000, 2, 4);
    w.write(&[0.3f32, 0.6, 0.9, -1.0, 0.5, 0.5], t0);
    let got = drain(&mut r);
    assert!(
        (got[0][0] - 0.6).abs() < 1e-7 && got[0][1].abs() < 1e-7,
        "{got:?}"
    );

    // i32, i8, u8, f64, i24.
    let (mut w, mut r) = queue(1, 8_000, 8_000, 2, 4);
    w.write(&[i32::MIN, 1 << 30], t0);
    assert_eq!(drain(&mut r), vec![vec![-1.0, 0.5]]);
    let (mut w, mut r) = queue(1, 8_000, 8_000, 2, 4);
    w.write(&[-128i8, 64], t0);
    assert_eq!(drain(&mut r), vec![vec![-1.0, 0.5]]);
    let (mut w, mut r) = queue(1, 8_000, 8_000, 2, 4);
    w.write(&[0u8, 192], t0);
    assert_eq!(drain(&mut r), vec![vec![-1.0, 0.5]]);
    let (mut w, mut r) = queue(2, 8_000, 8_000, 1, 4);
    w.write(&[0.25f64, 0.75], t0);
    assert_eq!(drain(&mut r), vec![vec![0.5]]);
    let (mut w, mut r) = queue(1, 8_000, 8_000, 1, 4);
    w.write(&[cpal::I24::new(1 << 22).unwrap()], t0);
    assert_eq!(drain(&mut r), vec![vec![0.5]]);
}

#[test]
fn chunks_span_callbacks_and_carry_their_capture_time() {
    let rate = 1000; // 1 ms per frame, to make the times easy to read
    let ms = Duration::from_millis;
    let (mut w, mut r) = queue(2, rate, rate, 4, 8);
    let t0 = Instant::now();
    // 3 frames delivered at t0 + 3 ms (so captured from t0 on), then 6 frames (a trailing half
    // frame is ignored) delivered 50 ms late: chunks [0..4) and [4..8); the 9th frame waits
    // for the next callback.
    w.write(&[1i16, 1, 2, 2, 3, 3], t0 + ms(3));
    assert!(drain(&mut r).is_empty(), "no full chunk yet");
    w.write(&[4i16, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10], t0 + ms(59));

    let mut out = Vec::new();
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 4);
    assert_near(r.last_chunk_captured_at().unwrap(), t0);
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 4);
    // The late callback does not make its audio look late: frame 4 was captured at t0 + 4 ms.
    assert_near(r.last_chunk_captured_at().unwrap(), t0 + ms(4));
    let expected: Vec<f32> = (1..=8).map(|v| v as f32 / 32768.0).collect();
    assert_eq!(out, expected);
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 0);
    assert_eq!(r.dropped_chunks(), 0);
}

#[test]
fn capture_times_ignore_late_callbacks_and_follow_lost_audio() {
    let rate = 1000u32;
    let ms = Duration::from_millis;
    let (mut w, mut r) = queue(1, rate, rate, 10, 1000);
    let t0 = Instant::now();
    let mut frames = 0u64;
    let mut delivered = t0;
    let mut out = Vec::new();
    // Callbacks of 10 frames every 10 ms, every third one 30 ms late, for 3 s.
    for k in 0..300u64 {
        frames += 10;
        delivered += ms(10);
        let late = if k % 3 == 2 { ms(30) } else { Duration::ZERO };
        w.write(&[0.0f32; 10], delivered + late);
        r.read(&mut out, Duration::ZERO).unwrap();
        assert_near(r.last_chunk_captured_at().unwrap(), t0 + ms(frames - 10));
    }
    // 200 ms of audio lost inside the audio system: the frame count falls behind the wall
    // clock. Within the clock's window (2 s) the times catch up.
    delivered += ms(200);
    for _ in 0..300u64 {
        frames += 10;
        delivered += ms(10);
        w.write(&[0.0f32; 10], delivered);
        r.read(&mut out, Duration::ZERO).unwrap();
    }
    assert_near(
        r.last_chunk_captured_at().unwrap(),
        t0 + ms(frames - 10) + ms(200),
    );
}

/// Equal within float-to-nanosecond rounding.
#[track_caller]
fn assert_near(got: Instant, want: Instant) {
    let d = if got > want { got - want } else { want - got };
    assert!(d < Duration::from_micros(1), "off by {d:?}");
}

#[test]
fn a_full_queue_drops_the_oldest_chunks_and_counts_them() {
    let (mut w, mut r) = queue(1, 16_000, 16_000, 2, 3);
    let t0 = Instant::now();
    // 10 chunks, nobody reading: the queue keeps the last 3.
    for k in 0..10 {
        let v = k as f32 / 16.0;
        w.write(&[v, v], t0);
    }
    assert_eq!(r.dropped_chunks(), 7);
    assert_eq!(w.dropped_chunks(), 7);
    let got = drain(&mut r);
    assert_eq!(
        got,
        vec![
            vec![7.0 / 16.0; 2],
            vec![8.0 / 16.0; 2],
            vec![9.0 / 16.0; 2]
        ]
    );
    // Buffers went back to the pool: a reader that keeps up loses nothing more.
    for k in 0..50 {
        let v = k as f32 / 64.0;
        w.write(&[v, v], t0);
        assert_eq!(drain(&mut r), vec![vec![v, v]]);
    }
    assert_eq!(r.dropped_chunks(), 7);
}

#[test]
fn the_callback_work_never_allocates_or_frees() {
    let (mut w, mut r) = queue(2, 48_000, 16_000, 480, 4);
    let callback: Vec<i16> = (0..2 * 1024).map(|i| (i * 37 % 2000) as i16).collect();
    let t0 = Instant::now();
    // Nobody reads: after the queue fills, every chunk goes through the drop-oldest path.
    let ops = allocations_during(|| {
        for _ in 0..40 {
            w.write(&callback, t0);
        }
    });
    assert_eq!(ops, 0, "the writer allocated or freed {ops} times");
    assert!(r.dropped_chunks() > 0);
    // And with a reader on another thread, often asleep waiting for audio, that the writer
    // wakes up.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        // Until the writer goes away.
        while r.read(&mut out, Duration::from_secs(5)).is_ok() {}
        out.len()
    });
    let mut ops = 0;
    for _ in 0..100 {
        ops += allocations_during(|| w.write(&callback, t0));
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(w);
    let read = reader.join().unwrap();
    assert_eq!(ops, 0, "the writer allocated or freed {ops} times");
    assert!(read > 0);
}

#[test]
fn errors_come_after_the_audio_captured_before_them() {
    let (mut w, mut r) = queue(1, 16_000, 16_000, 2, 8);
    let t0 = Instant::now();
    let reporter = w.error_reporter();
    w.write(&[0.5f32, 0.5], t0);
    // An overrun is counted, not fatal.
    reporter.report(&cpal::Error::new(cpal::ErrorKind::Xrun));
    w.write(&[0.25f32, 0.25], t0);
    reporter.report(&cpal::Error::new(cpal::ErrorKind::DeviceNotAvailable));
    let mut out = Vec::new();
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 2);
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 2);
    assert_eq!(out, vec![0.5, 0.5, 0.25, 0.25]);
    assert_eq!(r.overruns(), 1);
    for _ in 0..2 {
        let err = r.read(&mut out, Duration::ZERO).unwrap_err();
        assert!(matches!(err, Error::Device { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("test-device")
                && msg.contains("disconnected")
                && msg.contains("seqrec devices"),
            "{msg}"
        );
    }

    // A writer that goes away (the stream stopped) ends the capture too.
    let (w, mut r) = queue(1, 16_000, 16_000, 2, 8);
    drop(w);
    let err = r.read(&mut out, Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("stopped unexpectedly"), "{err}");
}

#[test]
fn a_source_that_goes_silent_is_declared_dead() {
    let cfg = |stall| QueueConfig {
        name: "test-device".into(),
        channels: 1,
        native_rate: 16_000,
        target_rate: 16_000,
        chunk_frames: 160,
        queue_chunks: 8,
        stall_timeout: Some(stall),
    };
    let mut out = Vec::new();
    // Audio, then nothing (not even silence): an error once the stall timeout has passed, even
    // within a single long read.
    let (mut w, mut r) = capture_queue(&cfg(Duration::from_millis(200))).unwrap();
    w.write(&[0.0f32; 160], Instant::now());
    assert_eq!(r.read(&mut out, Duration::ZERO).unwrap(), 160);
    let start = Instant::now();
    let err = r.read(&mut out, Duration::from_secs(10)).unwrap_err();
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(
        err.to_string().contains("stopped delivering audio"),
        "{err}"
    );
    assert!(r.has_failed());
    // Nothing from the start.
    let (_w, mut r) = capture_queue(&cfg(Duration::from_millis(100))).unwrap();
    let err = r.read(&mut out, Duration::from_secs(10)).unwrap_err();
    assert!(err.to_string().contains("delivers nothing"), "{err}");
    // A source that keeps delivering is not stalled, however long the reads wait.
    let (mut w, mut r) = capture_queue(&cfg(Duration::from_millis(100))).unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..30 {
            w.write(&[0.0f32; 160], Instant::now());
            std::thread::sleep(Duration::from_millis(10));
        }
        w
    });
    let mut total = 0;
    while total < 30 * 160 {
        total += r.read(&mut out, Duration::from_secs(5)).unwrap();
    }
    drop(writer.join().unwrap());
}

#[test]
fn read_times_out_with_nothing() {
    let (mut w, mut r) = queue(1, 16_000, 16_000, 160, 8);
    let mut out = Vec::new();
    let start = Instant::now();
    assert_eq!(r.read(&mut out, Duration::from_millis(50)).unwrap(), 0);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // Audio arriving while it waits wakes it.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        w.write(&[0.1f32; 160], Instant::now());
        w
    });
    assert_eq!(r.read(&mut out, Duration::from_secs(5)).unwrap(), 160);
    drop(writer.join().unwrap());
}

fn sine(rate: u32, freq: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
        .collect()
}

/// Feeds `input` (mono, native rate) in 10 ms callbacks and reads everything back.
fn resample_through_queue(input: &[f32], native: u32, target: u32) -> Vec<f32> {
    let chunk = native as usize / 100;
    let (mut w, mut r) = queue(1, native, target, chunk, input.len() / chunk + 2);
    let t0 = Instant::now();
    for block in input.chunks(256) {
        w.write(block, t0);
    }
    drain(&mut r).concat()
}

/// RMS of `a - b` relative to the RMS of `b`, in dB.
fn error_db(a: &[f32], b: &[f32]) -> f64 {
    let err: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let sig: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    10.0 * (err / sig).log10()
}

#[test]
fn resampling_is_accurate_and_time_aligned() {
    for &(native, target) in &[(48_000u32, 16_000u32), (44_100, 16_000), (16_000, 48_000)] {
        let secs = 2;
        let input = sine(native, 1000.0, native as usize * secs);
        let out = resample_through_queue(&input, native, target);
        // All but the last partial FFT unit comes out.
        let expected = target as usize * secs;
        assert!(
            out.len() <= expected && out.len() + target as usize / 10 > expected,
            "{native}->{target}: {} samples",
            out.len()
        );
        // Sample j is the input at j / target seconds: compare with the ideal tone, away from
        // the start (the tone starts abruptly there).
        let ideal = sine(target, 1000.0, out.len());
        let skip = target as usize / 50;
        let db = error_db(&out[skip..], &ideal[skip..]);
        println!("{native} -> {target} Hz: 1 kHz tone within {db:.1} dB of the ideal");
        assert!(db < -80.0, "{native}->{target}: {db:.1} dB");
    }
    // Above the target's Nyquist frequency: rejected.
    for freq in [8_600.0, 12_000.0, 20_000.0] {
        let input = sine(48_000, freq, 96_000);
        let out = resample_through_queue(&input, 48_000, 16_000);
        let rms = (out[320..]
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            / (out.len() - 320) as f64)
            .sqrt();
        let db = 20.0 * (rms / std::f64::consts::FRAC_1_SQRT_2).log10();
        println!("48000 -> 16000 Hz: {freq} Hz tone attenuated to {db:.1} dB");
        assert!(db < -60.0, "{freq} Hz: {db:.1} dB");
    }
}

#[test]
fn capture_times_follow_the_resampled_output() {
    let (native, target) = (48_000u32, 16_000u32);
    let (mut w, mut r) = queue(2, native, target, 480, 64);
    let t0 = Instant::now();
    // Callbacks of 441 frames, each delivered as its last frame is captured, plus a 1 ms
    // scheduling delay every other callback (which must not show in the times).
    let mut frames = 0u64;
    let mut out = Vec::new();
    let mut checked = 0;
    for k in 0..200u64 {
        let jitter = if k % 2 == 1 {
            Duration::from_millis(1)
        } else {
            Duration::ZERO
        };
        let at = t0 + Duration::from_secs_f64((frames + 441) as f64 / f64::from(native)) + jitter;
        w.write(&[0.0f32; 2 * 441], at);
        frames += 441;
        loop {
            let before = out.len();
            if r.read(&mut out, Duration::ZERO).unwrap() == 0 {
                break;
            }
            // The first sample returned is output sample `before`, i.e. input frame
            // `before * 3`, captured at t0 + before / 16000 s.
            let ideal = before as f64 / f64::from(target);
            let got = (r.last_chunk_captured_at().unwrap() - t0).as_secs_f64();
            let d = got - ideal;
            assert!(d.abs() < 1e-6, "{before}: off by {d} s");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn bad_settings_are_refused_with_their_name() {
    let bad = |f: fn(&mut QueueConfig)| {
        let mut cfg = QueueConfig {
            name: "x".into(),
            channels: 2,
            native_rate: 48_000,
            target_rate: 16_000,
            chunk_frames: 480,
            queue_chunks: 10,
            stall_timeout: None,
        };
        f(&mut cfg);
        capture_queue(&cfg).expect_err("refused").to_string()
    };
    assert!(bad(|c| c.channels = 0).contains("channels"));
    assert!(bad(|c| c.native_rate = 0).contains("native_rate"));
    assert!(bad(|c| c.chunk_frames = 0).contains("chunk_frames"));
    assert!(bad(|c| c.queue_chunks = 0).contains("queue_chunks"));
    assert!(bad(|c| c.native_rate = 47_999).contains("common divisor"));

    for (opts, name) in [
        (
            MicOptions {
                chunk_ms: 0,
                ..MicOptions::default()
            },
            "chunk_ms",
        ),
        (
            MicOptions {
                target_rate: 0,
                ..MicOptions::default()
            },
            "target_rate",
        ),
        (
            MicOptions {
                buffer_frames: Some(0),
                ..MicOptions::default()
            },
            "buffer_frames",
        ),
        (
            MicOptions {
                queue_chunks: 0,
                ..MicOptions::default()
            },
            "queue_chunks",
        ),
        (
            MicOptions {
                stall_timeout: Some(Duration::ZERO),
                ..MicOptions::default()
            },
            "stall_timeout",
        ),
    ] {
        let err = Microphone::open(&opts).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains(name),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Live capture from the virtual microphone.
//
// HOME and XDG_RUNTIME_DIR must be set before ALSA and PulseAudio read them, and changing the
// environment of a running multi-threaded test process is unsound, so the test re-runs this
// test binary, restricted to `live_capture_child`, in a child process whose environment comes
// from the env file.

const CHILD_MARK: &str = "SEQREC_VMIC_CHILD";

#[test]
fn live_capture_from_the_virtual_microphone() {
    let Ok(env_file) = std::env::var("SEQREC_VMIC_ENV") else {
        println!(
            "skipped: no virtual microphone (run `scripts/vmic.sh start`, then set \
             SEQREC_VMIC_ENV=$PWD/.vmic/env)"
        );
        return;
    };
    let vars = read_env_file(Path::new(&env_file));
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "live_capture_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(vars)
        .env(CHILD_MARK, "1")
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "live capture failed (output above)"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

/// `export KEY=VALUE` (or `KEY=VALUE`) lines.
fn read_env_file(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "SEQREC_VMIC_ENV={}: {e} (run scripts/vmic.sh start first)",
            path.display()
        )
    });
    let vars: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap_or(l).split_once('=')?;
            Some((
                k.trim().to_string(),
                v.trim().trim_matches(['"', '\'']).to_string(),
            ))
        })
        .collect();
    assert!(
        vars.iter().any(|(k, _)| k == "XDG_RUNTIME_DIR"),
        "{}: no XDG_RUNTIME_DIR line",
        path.display()
    );
    vars
}

#[test]
#[ignore = "run in a child process by live_capture_from_the_virtual_microphone"]
fn live_capture_child() {
    if std::env::var_os(CHILD_MARK).is_none() {
        println!("skipped: run live_capture_from_the_virtual_microphone instead");
        return;
    }
    let clip_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/clips/speech_16k.wav");
    let clip = seqrec::source::read_all(&clip_path, 16_000).unwrap();

    // The device list has the default device, and it can be opened by index or name; unknown
    // names are refused with the list.
    let devices = list_input_devices().unwrap();
    let default = devices
        .iter()
        .find(|d| d.is_default)
        .expect("a default input device");
    println!(
        "{} input devices; default: {} `{}` ({}), configs: {:?}",
        devices.len(),
        default.index,
        default.name,
        default.description,
        default.configs
    );
    assert!(!default.configs.is_empty());
    for wanted in [default.index.to_string(), default.name.clone()] {
        let mic = Microphone::open(&MicOptions {
            device: Some(wanted),
            ..MicOptions::default()
        })
        .unwrap();
        assert_eq!(mic.device_name(), default.name);
    }
    let err = Microphone::open(&MicOptions {
        device: Some("no-such-device".into()),
        ..MicOptions::default()
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Device { .. })
            && msg.contains("no-such-device")
            && msg.contains(&format!("{}: {}", default.index, default.name)),
        "{msg}"
    );

    // The device's own choice (PulseAudio resamples to 16 kHz), then 48 kHz resampled here.
    for native_rate in [None, Some(48_000)] {
        let opts = MicOptions {
            native_rate,
            ..MicOptions::default()
        };
        capture_and_compare(&opts, &clip_path, &clip);
    }
}

fn capture_and_compare(opts: &MicOptions, clip_path: &Path, clip: &[f32]) {
    let mut mic = Microphone::open(opts).unwrap();
    println!(
        "opened `{}`: {} ch, {} Hz, {}; reading at {} Hz",
        mic.device_name(),
        mic.native_channels(),
        mic.native_rate(),
        mic.sample_format(),
        mic.target_rate()
    );
    let mut audio = Vec::new();
    // (position in `audio`, capture time of that sample) for every read.
    let mut marks: Vec<(usize, Instant)> = Vec::new();
    // The first callback can come seconds after the stream starts.
    let opened = Instant::now();
    while mic.read(&mut audio, Duration::from_millis(100)).unwrap() == 0 {
        assert!(
            opened.elapsed() < Duration::from_secs(10),
            "no audio within 10 s"
        );
    }
    marks.push((0, mic.last_chunk_captured_at().unwrap()));
    println!("first audio {:?} after opening", opened.elapsed());

    let played_at = Instant::now();
    let mut player = Command::new("paplay")
        .args(["-d", "vsink"])
        .arg(clip_path)
        .spawn()
        .expect("running paplay");
    let record_for = Duration::from_secs_f64(clip.len() as f64 / 16_000.0 + 3.0);
    let mut latencies = Vec::new();
    while played_at.elapsed() < record_for {
        let before = audio.len();
        if mic.read(&mut audio, Duration::from_millis(100)).unwrap() > 0 {
            let captured = mic.last_chunk_captured_at().unwrap();
            marks.push((before, captured));
            latencies.push(captured.elapsed());
        }
    }
    assert!(player.wait().unwrap().success(), "paplay failed");
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "captured {:.2} s of audio in {:.2} s; dropped chunks {}, overruns {}; capture-to-read \
         latency median {:?}, 95th percentile {:?}, max {:?}",
        audio.len() as f64 / 16_000.0,
        opened.elapsed().as_secs_f64(),
        mic.dropped_chunks(),
        mic.overruns(),
        percentile(0.5),
        percentile(0.95),
        percentile(1.0),
    );
    assert_eq!(mic.dropped_chunks(), 0);

    let (lag, corr) = best_lag(clip, &audio);
    // The capture time of the clip's first sample, from the read that returned it.
    let &(pos, at) = marks.iter().rev().find(|(pos, _)| *pos <= lag).unwrap();
    let onset = at + Duration::from_secs_f64((lag - pos) as f64 / 16_000.0);
    // Signed, in seconds: the null sink's rewinds can put a new stream's first samples a little
    // earlier in the sample clock than the wall clock would.
    let onset_delay = if onset >= played_at {
        (onset - played_at).as_secs_f64()
    } else {
        -(played_at - onset).as_secs_f64()
    };
    println!(
        "max normalised cross-correlation {corr:.4} at {:.3} s into the capture; the clip's first \
         sample was captured {:.1} ms after paplay was started",
        lag as f64 / 16_000.0,
        onset_delay * 1e3
    );
    assert!(
        corr > 0.9,
        "captured audio does not match the clip: {corr:.4}"
    );
    // Capture times are consistent with when the clip was played.
    assert!(
        (-0.1..1.0).contains(&onset_delay),
        "the clip was dated {:.1} ms after it was played",
        onset_delay * 1e3
    );
}

/// The lag of `clip` in `audio` maximising the normalised cross-correlation
/// `Σ clip[i]·audio[lag+i] / (‖clip‖ ‖audio[lag..lag+n]‖)`, computed with FFTs.
fn best_lag(clip: &[f32], audio: &[f32]) -> (usize, f64) {
    use rustfft::FftPlanner;
    use rustfft::num_complex::Complex;
    let n = clip.len();
    assert!(
        audio.len() > n,
        "captured {} samples, the clip has {n}",
        audio.len()
    );
    let size = (audio.len() + n).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(size);
    let ifft = planner.plan_fft_inverse(size);
    let mut a: Vec<Complex<f64>> = audio
        .iter()
        .map(|&x| Complex::new(f64::from(x), 0.0))
        .collect();
    a.resize(size, Complex::default());
    let mut c: Vec<Complex<f64>> = clip
        .iter()
        .map(|&x| Complex::new(f64::from(x), 0.0))
        .collect();
    c.resize(size, Complex::default());
    fft.process(&mut a);
    fft.process(&mut c);
    let mut x: Vec<Complex<f64>> = a.iter().zip(&c).map(|(a, c)| a * c.conj()).collect();
    ifft.process(&mut x);
    let clip_norm = clip
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt();
    // Energy of each window of the audio, by prefix sums.
    let mut prefix = vec![0.0f64; audio.len() + 1];
    for (i, &v) in audio.iter().enumerate() {
        prefix[i + 1] = prefix[i] + f64::from(v).powi(2);
    }
    let mut best = (0, f64::MIN);
    for lag in 0..=audio.len() - n {
        let energy = prefix[lag + n] - prefix[lag];
        if energy <= 1e-12 {
            continue;
        }
        let corr = x[lag].re / size as f64 / (clip_norm * energy.sqrt());
        if corr > best.1 {
            best = (lag, corr);
        }
    }
    best
}
