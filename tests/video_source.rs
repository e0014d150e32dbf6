//! Video sources and the video preprocessing stage: every container decodes with the right
//! count/size/rate/timestamps, image folders, decimation, preprocessing against the numpy
//! reference (`scripts/video/preprocess.py`, refs made by `scripts/video/make_video_refs.py`),
//! clear errors for bad input, and live FFmpeg inputs (real-time delivery, drop-oldest, stop,
//! no hang on drop).
//!
//! These tests need `ffmpeg`/`ffprobe` on PATH (`scripts/setup.sh` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use seqrec::Error;
use seqrec::features::video::{
    ChannelOrder, Decimator, Layout, Preprocessor, ResizeMode, VideoConfig,
};
use seqrec::source::video::{self, Camera, FfmpegVideo, Frame, ImageFolder, VideoSource};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/video")
        .join(name)
}

/// Fails clearly when FFmpeg is missing.
fn need_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "`{tool}` is not installed: the video tests need FFmpeg (run scripts/setup.sh, or `sudo apt-get install ffmpeg`)"
        );
    }
}

fn read_all(src: &mut dyn VideoSource) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut f = Frame::new();
    while src.read(&mut f).expect("decoding failed") {
        frames.push(f.clone());
    }
    frames
}

/// (file, width, height, fps, frames, frame count in the header).
type Clip = (&'static str, u32, u32, f64, usize, Option<u64>);
const CLIPS: &[Clip] = &[
    ("testsrc2_160x120_25fps.mp4", 160, 120, 25.0, 25, Some(25)),
    ("mandelbrot_128x96_15fps.webm", 128, 96, 15.0, 15, None),
    ("testsrc_96x64_10fps.avi", 96, 64, 10.0, 8, Some(8)),
    ("testsrc2_98x62_30fps.mkv", 98, 62, 30.0, 36, None),
];

#[test]
fn every_container_decodes_with_the_right_count_size_rate_and_times() {
    need_ffmpeg();
    for &(name, w, h, fps, n, header_frames) in CLIPS {
        let mut v = FfmpegVideo::open(fixture(name)).unwrap();
        let info = v.info().clone();
        assert_eq!((info.width, info.height), (w, h), "{name}");
        assert!((info.fps - fps).abs() < 1e-9, "{name}: fps {}", info.fps);
        assert_eq!(info.frames, header_frames, "{name}");
        let dur = info.duration_s.expect("duration");
        assert!((dur - n as f64 / fps).abs() < 0.1, "{name}: duration {dur}");
        assert!(info.name.ends_with(name));
        let frames = read_all(&mut v);
        assert_eq!(frames.len(), n, "{name}");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            assert!(
                (f.pts_s - i as f64 / fps).abs() < 1e-9,
                "{name} frame {i}: {}",
                f.pts_s
            );
            assert_eq!((f.width, f.height), (w, h));
            assert_eq!(f.rgb.len(), (w * h * 3) as usize);
        }
        // testsrc frames move: consecutive frames differ.
        assert_ne!(frames[0].rgb, frames[1].rgb, "{name}");
        // The end is sticky.
        let mut f = Frame::new();
        assert!(!v.read(&mut f).unwrap());
        assert_eq!(v.dropped_frames(), 0);
    }
}

#[test]
fn open_dispatches_files_and_folders() {
    need_ffmpeg();
    let v = video::open(&fixture("testsrc_96x64_10fps.avi"), None).unwrap();
    assert_eq!(v.info().width, 96);
    let f = video::open(&fixture("frames"), Some(5.0)).unwrap();
    assert_eq!((f.info().width, f.info().fps), (80, 5.0));
}

#[test]
fn image_folder_reads_png_jpeg_bmp_in_name_order() {
    let mut src = ImageFolder::open(fixture("frames"), 4.0).unwrap();
    let info = src.info().clone();
    assert_eq!((info.width, info.height, info.fps), (80, 60, 4.0));
    assert_eq!((info.frames, info.duration_s), (Some(4), Some(1.0)));
    let names: Vec<_> = src
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["f01.png", "f02.png", "f03.jpg", "f04.bmp"]);
    let frames = read_all(&mut src);
    assert_eq!(frames.len(), 4);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.index, f.pts_s), (i as u64, i as f64 / 4.0));
        assert_eq!(f.rgb.len(), 80 * 60 * 3);
    }
    // The BMP is the lossless copy of frame 4: compare with the `image` crate's own decoding.
    let bmp = image::open(fixture("frames/f04.bmp")).unwrap().into_rgb8();
    assert_eq!(frames[3].rgb, bmp.into_raw());
}

#[test]
fn image_folder_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Empty folder.
    let e = ImageFolder::open(dir.path(), 30.0).unwrap_err();
    assert!(matches!(e, Error::Video { .. }), "{e}");
    assert!(e.to_string().contains("no image"), "{e}");
    // Two sizes.
    image::RgbImage::new(8, 6)
        .save(dir.path().join("a.png"))
        .unwrap();
    image::RgbImage::new(6, 8)
        .save(dir.path().join("b.png"))
        .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let mut src = ImageFolder::open(dir.path(), 30.0).unwrap();
    let mut f = Frame::new();
    assert!(src.read(&mut f).unwrap());
    let e = src.read(&mut f).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("b.png") && msg.contains("6x8"), "{msg}");
    // A broken image.
    std::fs::write(dir.path().join("c.jpg"), b"not a jpeg").unwrap();
    std::fs::remove_file(dir.path().join("b.png")).unwrap();
    let mut src = ImageFolder::open(dir.path(), 30.0).unwrap();
    assert!(src.read(&mut f).unwrap());
    let msg = src.read(&mut f).unwrap_err().to_string();
    assert!(msg.contains("c.jpg"), "{msg}");
    // A bad rate.
    assert!(matches!(
        ImageFolder::open(dir.path(), 0.0),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Images decode in a reader thread ahead of the consumer; dropping the
/// source while that thread waits on a full queue ends it at once.
#[test]
fn image_folder_reads_ahead_and_drops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..24u8 {
        let img = image::RgbImage::from_pixel(64, 48, image::Rgb([i * 10, 0, 255 - i * 10]));
        img.save(dir.path().join(format!("{i:03}.png"))).unwrap();
    }
    let mut src = ImageFolder::open(dir.path(), 24.0).unwrap();
    let mut f = Frame::new();
    assert!(src.read(&mut f).unwrap());
    assert_eq!((f.index, f.pixel(0, 0)), (0, [0, 0, 255]));
    // Let the reader fill the queue and block on it.
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    drop(src);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
    // Read to the end: every image once, in order.
    let mut src = ImageFolder::open(dir.path(), 24.0).unwrap();
    let frames = read_all(&mut src);
    assert_eq!(frames.len(), 24);
    assert!(frames.iter().enumerate().all(
        |(i, f)| f.index == i as u64 && f.pixel(5, 5) == [i as u8 * 10, 0, 255 - i as u8 * 10]
    ));
}

fn decimated(cfg: &VideoConfig, clip: &str) -> Vec<(u64, f64)> {
    let mut v = FfmpegVideo::open(fixture(clip)).unwrap();
    let mut d = Decimator::new(cfg, v.info().fps);
    let mut kept = Vec::new();
    let mut f = Frame::new();
    while v.read(&mut f).unwrap() {
        if d.keep(&f) {
            kept.push((f.index, f.pts_s));
        }
    }
    kept
}

#[test]
fn decimation_keeps_true_timestamps() {
    need_ffmpeg();
    let clip = "testsrc2_98x62_30fps.mkv"; // 36 frames at 30 fps
    let every3 = VideoConfig {
        every: Some(3),
        ..VideoConfig::default()
    };
    let fps10 = VideoConfig {
        fps: Some(10.0),
        ..VideoConfig::default()
    };
    let want: Vec<(u64, f64)> = (0..12).map(|k| (3 * k, (3 * k) as f64 / 30.0)).collect();
    assert_eq!(decimated(&every3, clip), want);
    let got = decimated(&fps10, clip);
    assert_eq!(got.len(), 12);
    for ((i, t), (wi, wt)) in got.iter().zip(&want) {
        assert_eq!(i, wi);
        assert!((t - wt).abs() < 1e-9);
    }
    // 25 fps -> at most 10 fps: 10 frames in 1 s, never closer than 2 source frames.
    let got = decimated(&fps10, "testsrc2_160x120_25fps.mp4");
    assert_eq!(got.len(), 10, "{got:?}");
    for w in got.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap == 2 || gap == 3, "{got:?}");
        assert!((w[1].1 - w[1].0 as f64 / 25.0).abs() < 1e-9);
    }
    // A target above the source rate keeps everything.
    let fast = VideoConfig {
        fps: Some(60.0),
        ..VideoConfig::default()
    };
    assert_eq!(decimated(&fast, clip).len(), 36);
    let d = Decimator::new(&fps10, 30.0);
    assert!((d.period_s() - 0.1).abs() < 1e-12);
}

#[derive(serde::Deserialize)]
struct RefCase {
    name: String,
    clip: String,
    frame: u64,
    width: u32,
    height: u32,
    resize: ResizeMode,
    channels: ChannelOrder,
    layout: Layout,
    mean: [f32; 3],
    std: [f32; 3],
}

fn ref_cases() -> Vec<RefCase> {
    let text = std::fs::read_to_string(fixture("refs/params.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn png_frame(path: &Path) -> Frame {
    let img = image::open(path).unwrap().into_rgb8();
    Frame {
        index: 0,
        pts_s: 0.0,
        width: img.width(),
        height: img.height(),
        rgb: img.into_raw(),
    }
}

#[test]
fn preprocessing_matches_the_numpy_reference() {
    let mut worst = 0.0f32;
    for case in ref_cases() {
        let cfg = VideoConfig {
            width: case.width,
            height: case.height,
            resize: case.resize,
            mean: case.mean,
            std: case.std,
            channels: case.channels,
            layout: case.layout,
            fps: None,
            every: None,
        };
        let frame = png_frame(&fixture(&format!("refs/{}.rgb.png", case.name)));
        let want = seqrec::npy::read_f32(fixture(&format!("refs/{}.npy", case.name))).unwrap();
        assert_eq!(want.shape, cfg.shape(), "{}", case.name);
        let mut p = Preprocessor::new(&cfg).unwrap();
        let mut out = Vec::new();
        p.process(&frame, &mut out);
        assert_eq!(out.len(), cfg.tensor_len());
        // Compared in the output's units: ~1e-6 for normalised cases, ~3e-5 for the
        // unnormalised one (std 1, values up to 255, where float32 resolves ~1.5e-5).
        let max_err = out
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let rel = max_err / want.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "{}: max |rust - numpy| = {max_err:.2e} (relative {rel:.1e})",
            case.name
        );
        assert!(max_err <= 1e-4, "{}: {max_err}", case.name);
        worst = worst.max(max_err);
        // Processing the same frame again appends the same values.
        let mut twice = out.clone();
        p.process(&frame, &mut twice);
        assert_eq!(twice[out.len()..], out[..]);
    }
    eprintln!("worst: {worst:.2e}");
}

#[test]
fn ffmpeg_video_delivers_exactly_the_reference_pixels() {
    need_ffmpeg();
    for case in ref_cases() {
        let png = png_frame(&fixture(&format!("refs/{}.rgb.png", case.name)));
        let mut v = FfmpegVideo::open(fixture(&case.clip)).unwrap();
        let mut f = Frame::new();
        for _ in 0..=case.frame {
            assert!(v.read(&mut f).unwrap());
        }
        assert_eq!(f.index, case.frame);
        assert_eq!((f.width, f.height), (png.width, png.height));
        assert!(
            f.rgb == png.rgb,
            "{}: pixels differ from ffmpeg's rgb24",
            case.name
        );
    }
}

#[test]
fn preprocessing_handles_size_changes_and_wide_and_tall_inputs() {
    let cfg = VideoConfig {
        width: 20,
        height: 10,
        ..VideoConfig::default()
    };
    let mut p = Preprocessor::new(&cfg).unwrap();
    let mut out = Vec::new();
    for (w, h) in [(640, 10), (7, 300), (20, 10), (1, 1), (3, 2)] {
        let frame = Frame {
            width: w,
            height: h,
            rgb: vec![77; (w * h * 3) as usize],
            ..Frame::default()
        };
        out.clear();
        p.process(&frame, &mut out);
        assert_eq!(out.len(), 600);
        assert!(out.iter().all(|v| (v - 77.0).abs() < 1e-3), "{w}x{h}");
    }
    let bad = VideoConfig {
        width: 0,
        ..VideoConfig::default()
    };
    assert!(Preprocessor::new(&bad).is_err());
}

fn video_err(path: &Path) -> String {
    let e = FfmpegVideo::open(path).unwrap_err();
    let msg = e.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    eprintln!("{msg}");
    assert!(msg.contains(&*name), "error does not name the file: {msg}");
    msg
}

#[test]
fn bad_files_give_clear_errors_naming_the_file() {
    need_ffmpeg();
    // Truncated MP4: its index (moov) is lost.
    let e = FfmpegVideo::open(fixture("truncated.mp4")).unwrap_err();
    assert!(matches!(e, Error::Video { .. }), "{e}");
    let msg = video_err(&fixture("truncated.mp4"));
    assert!(msg.contains("moov atom not found"), "{msg}");
    // Random bytes.
    let msg = video_err(&fixture("random_bytes.mp4"));
    assert!(msg.contains("FFmpeg cannot read it"), "{msg}");
    // Audio only.
    let msg = video_err(&fixture("audio_only.m4a"));
    assert!(
        msg.contains("no video stream") && msg.contains("audio"),
        "{msg}"
    );
    // Missing file.
    let missing = fixture("no_such_clip.mp4");
    let e = FfmpegVideo::open(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("no_such_clip.mp4"), "{e}");
    // A folder.
    let msg = video_err(&fixture("frames"));
    assert!(msg.contains("folder"), "{msg}");
    // Unsupported: a text file.
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.mp4");
    std::fs::write(&txt, "hello, this is not a video\n").unwrap();
    video_err(&txt);
    // A header that claims an absurd frame size: refused before anything is allocated.
    let y4m = dir.path().join("huge.y4m");
    std::fs::write(
        &y4m,
        b"YUV4MPEG2 W20000 H16 F30:1 Ip A1:1 C420jpeg\nFRAME\n",
    )
    .unwrap();
    let msg = video_err(&y4m);
    assert!(msg.contains("too large"), "{msg}");
}

#[test]
fn a_video_cut_mid_stream_delivers_its_frames_then_an_error() {
    need_ffmpeg();
    // Each container cut at 60 %: FFmpeg decodes what is there and exits 0
    // (saying "partial file" / "File ended prematurely"); seqrec must deliver
    // those frames, then an error naming the file and the shortfall — never
    // a silently shorter video, a hang or a panic.
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "testsrc2_98x62_30fps.mkv",
        "testsrc2_160x120_25fps.mp4",
        "mandelbrot_128x96_15fps.webm",
        "testsrc_96x64_10fps.avi",
    ] {
        let whole = read_all(&mut FfmpegVideo::open(fixture(name)).unwrap()).len();
        let data = std::fs::read(fixture(name)).unwrap();
        let cut = dir.path().join(format!("cut_{name}"));
        std::fs::write(&cut, &data[..data.len() * 6 / 10]).unwrap();
        let mut v = match FfmpegVideo::open(&cut) {
            Ok(v) => v,
            // (a container whose index is at the end cannot even be opened)
            Err(e) => {
                assert!(e.to_string().contains("cut_"), "{e}");
                continue;
            }
        };
        let mut f = Frame::new();
        let mut n = 0;
        let end = loop {
            match v.read(&mut f) {
                Ok(true) => n += 1,
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
        };
        assert!(n < whole, "{name}: {n} of {whole} frames");
        let e = end.unwrap_or_else(|| panic!("{name}: {n} of {whole} frames and no error"));
        let msg = e.to_string();
        assert!(msg.contains(&format!("cut_{name}")), "{msg}");
        assert!(msg.contains(&format!("only {n} of ")), "{msg}");
    }
}

#[test]
fn ffmpeg_missing_says_how_to_install_it() {
    // Re-runs this test in a child process whose PATH has no ffmpeg.
    if std::env::var_os("SEQREC_VIDEO_NO_FFMPEG").is_some() {
        let e = FfmpegVideo::open(fixture("testsrc_96x64_10fps.avi")).unwrap_err();
        assert!(matches!(e, Error::ToolMissing { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("apt-get install ffmpeg"), "{msg}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ffmpeg_missing_says_how_to_install_it",
            "--test-threads",
            "1",
        ])
        .env("SEQREC_VIDEO_NO_FFMPEG", "1")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

fn lavfi(spec: &str, realtime: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if realtime {
        a.push("-re".into());
    }
    a.extend(["-f", "lavfi", "-i", spec].map(String::from));
    a
}

#[test]
fn live_source_delivers_frames_in_real_time() {
    need_ffmpeg();
    let mut v = FfmpegVideo::live(&lavfi("testsrc=size=64x48:rate=25:duration=1.2", true)).unwrap();
    let info = v.info().clone();
    assert_eq!((info.width, info.height, info.fps), (64, 48, 25.0));
    assert_eq!(info.frames, None);
    let t0 = Instant::now();
    let mut f = Frame::new();
    let mut arrivals = Vec::new();
    while v.read(&mut f).unwrap() {
        arrivals.push((f.index, f.pts_s, t0.elapsed().as_secs_f64()));
    }
    let total = t0.elapsed().as_secs_f64();
    // A fast consumer gets every frame (a drop or two is tolerated on a loaded machine).
    let dropped = v.dropped_frames();
    assert_eq!(arrivals.len() as u64 + dropped, 30);
    assert!(dropped <= 2, "{dropped} frames dropped");
    // Real time: 1.2 s of video takes about 1.2 s (not the few ms it takes to render).
    assert!((0.9..4.0).contains(&total), "took {total:.2} s");
    // Frame k arrives no earlier than about its timestamp.
    for &(i, pts, at) in &arrivals {
        assert!((pts - i as f64 / 25.0).abs() < 1e-9);
        assert!(at + 0.25 >= pts, "frame {i} at {at:.3} s, pts {pts:.3}");
    }
}

#[test]
fn live_source_drops_the_oldest_frames_for_a_slow_consumer() {
    need_ffmpeg();
    let mut v = FfmpegVideo::live(&lavfi("testsrc=size=64x48:rate=25:duration=1.2", true)).unwrap();
    let mut f = Frame::new();
    let mut got = Vec::new();
    while v.read(&mut f).unwrap() {
        got.push(f.index);
        std::thread::sleep(Duration::from_millis(150));
    }
    let dropped = v.dropped_frames();
    assert!(dropped > 0, "no drop with a slow consumer");
    assert_eq!(got.len() as u64 + dropped, 30, "{got:?}, {dropped} dropped");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    // The newest frame is never the one dropped.
    assert_eq!(*got.last().unwrap(), 29, "{got:?}");
}

#[test]
fn live_source_stops_and_drops_without_hanging() {
    need_ffmpeg();
    // Stopped from another thread.
    let mut v = FfmpegVideo::live(&lavfi("testsrc=size=64x48:rate=25", true)).unwrap();
    let stop = v.stop_handle();
    let mut f = Frame::new();
    for _ in 0..3 {
        assert!(v.read(&mut f).unwrap());
    }
    let t = Instant::now();
    std::thread::spawn(move || stop.stop()).join().unwrap();
    assert!(!v.read(&mut f).unwrap());
    drop(v);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Dropped mid-stream (without -re FFmpeg renders as fast as it can: the queue overflows).
    for spec in ["testsrc=size=320x240:rate=25", "testsrc=size=64x48:rate=25"] {
        let mut v = FfmpegVideo::live(&lavfi(spec, spec.contains("64x48"))).unwrap();
        assert!(v.read(&mut f).unwrap());
        let t = Instant::now();
        drop(v);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
    // A file dropped mid-stream, with the reader waiting on the full queue.
    let mut v = FfmpegVideo::open(fixture("testsrc2_160x120_25fps.mp4")).unwrap();
    assert!(v.read(&mut f).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    drop(v);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn live_with_explicit_size_and_rate() {
    need_ffmpeg();
    let args = lavfi("testsrc=size=320x240:rate=30:duration=0.5", false);
    let mut v = FfmpegVideo::live_with(&args, 40, 30, 10.0).unwrap();
    assert_eq!(
        (v.info().width, v.info().height, v.info().fps),
        (40, 30, 10.0)
    );
    let frames = read_all(&mut v);
    assert!((4..=8).contains(&frames.len()), "{}", frames.len());
    assert!(frames.iter().all(|f| f.rgb.len() == 40 * 30 * 3));
    // Absurd sizes are refused before anything is allocated.
    let e = FfmpegVideo::live_with(&args, 100_000, 100_000, 30.0).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    // An input that cannot be opened.
    let e = FfmpegVideo::live(&[
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "nosuchfilter".into(),
    ])
    .unwrap_err();
    assert!(matches!(e, Error::Video { .. }), "{e}");
}

#[test]
fn missing_camera_is_a_clear_error() {
    let e = Camera::open("/dev/video97", Some((640, 480)), Some(30)).unwrap_err();
    assert!(matches!(e, Error::Camera { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("/dev/video97"), "{msg}");
    let e = Camera::open("No Such Camera", None, None).unwrap_err();
    assert!(matches!(e, Error::Camera { .. }), "{e}");
    assert!(e.to_string().contains("No Such Camera"), "{e}");
}

/// Speed of the preprocessing (run with `cargo test --release --test video_source -- --ignored`).
#[test]
#[ignore]
fn preprocessing_speed() {
    for (w, h) in [(1920u32, 1080u32), (640, 480), (160, 120)] {
        let frame = Frame {
            width: w,
            height: h,
            rgb: (0..w * h * 3).map(|i| (i % 251) as u8).collect(),
            ..Frame::default()
        };
        let mut p = Preprocessor::new(&VideoConfig::default()).unwrap();
        let mut out = Vec::new();
        p.process(&frame, &mut out);
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            out.clear();
            p.process(&frame, &mut out);
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        eprintln!("{w}x{h} -> 224x224 crop: {ms:.2} ms/frame");
    }
}
