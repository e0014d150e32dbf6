//! Video through the `ffmpeg` and `ffprobe` programs.
//!
//! [`FfmpegVideo::open`] asks `ffprobe -show_streams -show_format -of json` for the first video
//! stream's size, frame rate, frame count and duration, then runs
//! `ffmpeg -nostdin -i FILE -map 0:N -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -` (`N` that
//! stream; `-vsync passthrough` with FFmpeg 4, which lacks `-fps_mode`) and
//! cuts its output into frames of exactly `width * height * 3` bytes in a reader thread.
//!
//! Timestamps are `index / fps` with the stream's average frame rate (`avg_frame_rate`, or
//! `r_frame_rate` when that is unknown): seqrec assumes a **constant frame rate**. Every decoded
//! frame is delivered once (passthrough: no frame is duplicated or dropped to fit a rate), so for
//! a variable-rate file the frames are all there but their times are approximate. Cover art
//! (an attached picture stream) is not taken for the video.
//! Rotation metadata is honoured (FFmpeg rotates; the reported size is the rotated one).
//!
//! # Bad input
//!
//! * `ffmpeg`/`ffprobe` not installed → [`Error::ToolMissing`];
//! * the file does not exist or cannot be read → [`Error::Io`];
//! * FFmpeg cannot read it (not a media file, truncated container, unknown codec), it has no
//!   video stream, its frame size is 0 or absurd ([`super::MAX_PIXELS`]), the last frame is cut
//!   short, or FFmpeg fails mid-stream → [`Error::Video`] naming the file, with FFmpeg's last
//!   error line. Frames decoded before a mid-stream failure are delivered first.
//!
//! * FFmpeg decodes fewer frames than the file should have — the container's frame count, or
//!   its duration times the rate when it has none — while reporting errors (a file cut short:
//!   FFmpeg says "partial file" or "File ended prematurely" and exits with status 0), or over
//!   10 % fewer without a word → [`Error::Video`] ("only 11 of the 100 frames the container
//!   declares could be decoded: ... partial file"), after the frames that did decode.
//!
//! Damaged packets that FFmpeg conceals and continues past, with every frame there, are not
//! errors.
//!
//! Dropping an [`FfmpegVideo`] kills and reaps FFmpeg and joins the reader thread; it never
//! hangs.

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::queue::{Consumer, Packet, Producer, queue};
use super::{Frame, QUEUE_FRAMES, VideoInfo, VideoSource, check_size};
use crate::{Error, Result};

/// Bytes of FFmpeg's stderr kept for error messages.
const STDERR_KEEP: usize = 8192;

/// A live input that delivers no frame for this long is an error.
const LIVE_STALL: Duration = Duration::from_secs(10);

/// Stops a [`FfmpegVideo`] (or a camera) from another thread, e.g. a Ctrl-C handler: its
/// `read` returns `Ok(false)` from then on.
#[derive(Clone)]
pub struct StopHandle(Arc<dyn Fn() + Send + Sync>);

impl StopHandle {
    pub(crate) fn from_fn(f: std::sync::Arc<dyn Fn() + Send + Sync>) -> Self {
        Self(f)
    }

    /// Stops the source.
    pub fn stop(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

/// A video file or a live FFmpeg input, decoded by FFmpeg in a reader thread.
pub struct FfmpegVideo {
    info: VideoInfo,
    consumer: Option<Consumer>,
    child: Arc<Mutex<Child>>,
    reader: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FfmpegVideo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfmpegVideo")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What ffprobe says about the first video stream.
#[derive(Debug)]
struct Probe {
    /// Index of the stream in the file (`-map 0:N`).
    stream: u64,
    width: u32,
    height: u32,
    fps: f64,
    frames: Option<u64>,
    duration_s: Option<f64>,
}

impl FfmpegVideo {
    /// Opens a video file.
    ///
    /// # Errors
    /// See the module documentation of `source::video::ffmpeg`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        if path.is_dir() {
            return Err(Error::Video {
                path: path.into(),
                reason: "is a folder, not a video file (open folders of images with ImageFolder)"
                    .into(),
            });
        }
        let name = path.display().to_string();
        let input: Vec<OsString> = vec!["-i".into(), path.as_os_str().to_owned()];
        let probe = probe(path, &input)?;
        let info = VideoInfo {
            name,
            width: probe.width,
            height: probe.height,
            fps: probe.fps,
            frames: probe.frames,
            duration_s: probe.duration_s,
        };
        let map = format!("0:{}", probe.stream);
        Self::spawn(info, path.to_path_buf(), &input, &map, &[], false)
    }

    /// Opens a live FFmpeg input: `args` are FFmpeg's input options and input, e.g.
    /// `["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"]` or
    /// `["-f", "v4l2", "-i", "/dev/video0"]`. Its size and rate come from `ffprobe` on the same
    /// input (without `-re`); use [`FfmpegVideo::live_with`] when the input cannot be probed
    /// (a device that cannot be opened twice) or to force a size and rate.
    ///
    /// Frames are delivered through a drop-oldest queue: a slow consumer loses the oldest
    /// frames (counted by [`VideoSource::dropped_frames`]) and never stalls the input. The
    /// stream ends when FFmpeg does (add `-t SECS` for a bounded run) or when stopped; no frame
    /// for 10 s is an error.
    ///
    /// # Errors
    /// [`Error::ToolMissing`], or [`Error::Video`] when the input cannot be probed or opened.
    pub fn live(args: &[String]) -> Result<Self> {
        let name = args.join(" ");
        let probe_args: Vec<OsString> = args
            .iter()
            .filter(|a| *a != "-re")
            .map(OsString::from)
            .collect();
        let probe = probe(Path::new(&name), &probe_args).map_err(|e| match e {
            Error::Video { path, reason } => Error::Video {
                path,
                reason: format!(
                    "{reason} (could not probe the live input; give its size and rate explicitly)"
                ),
            },
            e => e,
        })?;
        let info = VideoInfo {
            name: name.clone(),
            width: probe.width,
            height: probe.height,
            fps: probe.fps,
            frames: None,
            duration_s: None,
        };
        let input: Vec<OsString> = args.iter().map(OsString::from).collect();
        Self::spawn(info, name.into(), &input, "0:v:0", &[], true)
    }

    /// Opens a live FFmpeg input (see [`FfmpegVideo::live`]) without probing it: FFmpeg scales
    /// its frames to `width`x`height` and converts them to a constant `fps`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad size or rate, [`Error::ToolMissing`], or
    /// [`Error::Video`].
    pub fn live_with(args: &[String], width: u32, height: u32, fps: f64) -> Result<Self> {
        let name = args.join(" ");
        check_size(&name, width, height)?;
        if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
            return Err(Error::config("fps", format!("{fps} is not in (0, 1000]")));
        }
        let info = VideoInfo {
            name: name.clone(),
            width,
            height,
            fps,
            frames: None,
            duration_s: None,
        };
        let input: Vec<OsString> = args.iter().map(OsString::from).collect();
        let output: Vec<OsString> = vec![
            "-vf".into(),
            format!("scale={width}:{height}").into(),
            "-r".into(),
            format!("{fps}").into(),
        ];
        Self::spawn(info, name.into(), &input, "0:v:0", &output, true)
    }

    /// A handle that stops this source from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(
            self.consumer
                .as_ref()
                .expect("consumer present until drop")
                .stop_flag(),
        )
    }

    fn spawn(
        info: VideoInfo,
        path: PathBuf,
        input: &[OsString],
        map: &str,
        output: &[OsString],
        live: bool,
    ) -> Result<Self> {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-v", "error", "-nostdin"])
            .args(input)
            .args(["-map", map])
            .args(output);
        if output.is_empty() {
            cmd.args([passthrough_option(), "passthrough"]);
        }
        cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error("ffmpeg", &path, e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let child = Arc::new(Mutex::new(child));
        let (producer, consumer) = queue(QUEUE_FRAMES, live, live.then_some(LIVE_STALL));
        let job = Reader {
            path,
            width: info.width,
            height: info.height,
            fps: info.fps,
            declared: (!live).then(|| expected_frames(&info)).flatten(),
            child: child.clone(),
        };
        let reader = std::thread::Builder::new()
            .name("seqrec-video".into())
            .spawn(move || job.run(stdout, stderr, producer))
            .map_err(|e| Error::Video {
                path: info.name.clone().into(),
                reason: format!("cannot start the reader thread: {e}"),
            })?;
        Ok(Self {
            info,
            consumer: Some(consumer),
            child,
            reader: Some(reader),
        })
    }
}

impl VideoSource for FfmpegVideo {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read(&mut self, frame: &mut Frame) -> Result<bool> {
        match &mut self.consumer {
            Some(c) => c.read(frame, &self.info.name),
            None => Ok(false),
        }
    }

    fn dropped_frames(&self) -> u64 {
        self.consumer.as_ref().map_or(0, Consumer::dropped)
    }
}

impl Drop for FfmpegVideo {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            c.stop();
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The reader thread: FFmpeg's stdout cut into frames.
struct Reader {
    path: PathBuf,
    width: u32,
    height: u32,
    fps: f64,
    /// Frames a file should give (count, whether the container says so
    /// exactly); `None` for live inputs.
    declared: Option<(u64, bool)>,
    child: Arc<Mutex<Child>>,
}

impl Reader {
    fn run(self, mut stdout: impl Read, stderr: ChildStderr, mut producer: Producer) {
        let errors = std::thread::spawn(move || tail(stderr));
        let frame_len = self.width as usize * self.height as usize * 3;
        let mut index = 0u64;
        let mut failure: Option<String> = None;
        loop {
            let mut buf = producer.buffer(frame_len);
            match read_full(&mut stdout, &mut buf) {
                Ok(n) if n == frame_len => {}
                Ok(0) => break,
                Ok(n) => {
                    failure = Some(format!(
                        "truncated frame {index}: FFmpeg's output ended after {n} of {frame_len} bytes"
                    ));
                    break;
                }
                Err(e) => {
                    if !producer.stopped() {
                        failure = Some(format!("reading FFmpeg's output: {e}"));
                    }
                    break;
                }
            }
            let packet = Packet {
                index,
                pts_s: index as f64 / self.fps,
                width: self.width,
                height: self.height,
                rgb: buf,
            };
            if !producer.push(packet) {
                // The consumer is gone or stopped: Drop kills FFmpeg.
                drop(stdout);
                let _ = errors.join();
                return;
            }
            index += 1;
        }
        drop(stdout);
        let status = wait(&self.child);
        let stderr = errors.join().unwrap_or_default();
        if producer.stopped() {
            return;
        }
        let last = last_line(&stderr);
        let reason = match (status, failure) {
            (_, Some(f)) => Some(match last {
                Some(l) => format!("{f} ({l})"),
                None => f,
            }),
            (Some(s), None) if !s.success() => Some(match last {
                Some(l) => format!("FFmpeg failed after {index} frames: {l}"),
                None => format!("FFmpeg failed after {index} frames ({s})"),
            }),
            (_, None) if index == 0 => Some(match last {
                Some(l) => format!("no frame could be decoded: {l}"),
                None => "the video stream has no frames".into(),
            }),
            // FFmpeg exits 0 on a file cut short (it decodes what is there
            // and says "partial file"): fewer frames than the container
            // declares, with an error from FFmpeg or far fewer, is data
            // lost, not a short video.
            (_, None) => match self.declared {
                Some((n, exact)) if short(index, n, last.is_some()) => Some(format!(
                    "only {index} of {} could be decoded{}",
                    if exact {
                        format!("the {n} frames the container declares")
                    } else {
                        format!("about {n} frames (its duration at its frame rate)")
                    },
                    last.map(|l| format!(": {l}")).unwrap_or_default()
                )),
                _ => None,
            },
        };
        if let Some(reason) = reason {
            producer.fail(Error::Video {
                path: self.path,
                reason,
            });
        }
    }
}

/// The frames a file should give: the container's count (exact), else its
/// duration times the rate (about).
fn expected_frames(info: &VideoInfo) -> Option<(u64, bool)> {
    info.frames.map(|n| (n, true)).or_else(|| {
        info.duration_s
            .map(|d| ((d * info.fps).round() as u64, false))
            .filter(|&(n, _)| n > 0)
    })
}

/// Whether `got` frames of `want` mean the file lost frames: any shortfall
/// when FFmpeg reported errors, more than 10 % (and 2 frames) when it did
/// not (edit lists and rate rounding trim a few frames from healthy files).
fn short(got: u64, want: u64, ffmpeg_errors: bool) -> bool {
    if ffmpeg_errors {
        got + 1 < want
    } else {
        (got + 2) as f64 <= 0.9 * want as f64
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Waits (a bounded time) for FFmpeg to exit once its output has ended.
fn wait(child: &Mutex<Child>) -> Option<std::process::ExitStatus> {
    for _ in 0..500 {
        {
            let mut c = child.lock().ok()?;
            match c.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = child.lock().ok()?;
    let _ = c.kill();
    c.wait().ok()
}

/// The last `STDERR_KEEP` bytes of a stream, as text.
fn tail(mut r: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The gist of FFmpeg's stderr: its last two distinct lines, without the `[demuxer @ 0x...]`
/// and file-name prefixes (`moov atom not found; Invalid data found when processing input`).
fn last_line(text: &str) -> Option<String> {
    let mut picked: Vec<String> = Vec::new();
    for line in text.lines().rev() {
        let mut l = line.trim();
        if l.starts_with('[')
            && let Some(end) = l.find("] ")
        {
            l = l[end + 2..].trim();
        }
        // "path: message" -> "message" (the error names the file already).
        if let Some((head, rest)) = l.rsplit_once(": ")
            && (head.contains('/') || head.contains('.'))
            && !rest.is_empty()
        {
            l = rest.trim();
        }
        if l.is_empty() || picked.iter().any(|p| p == l) {
            continue;
        }
        picked.push(l.to_owned());
        if picked.len() == 2 {
            break;
        }
    }
    picked.reverse();
    (!picked.is_empty()).then(|| picked.join("; "))
}

/// `-fps_mode` (FFmpeg >= 5.1), or `-vsync` for older FFmpeg builds that lack it.
fn passthrough_option() -> &'static str {
    static OPTION: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    OPTION.get_or_init(|| {
        let version = Command::new("ffmpeg")
            .args(["-hide_banner", "-version"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // "ffmpeg version 5.1.9-0+deb12u1 ...", "ffmpeg version n7.0", "ffmpeg version N-1234-g..."
        let number = version
            .split_whitespace()
            .nth(2)
            .unwrap_or("")
            .trim_start_matches('n');
        let mut parts = number.split(['.', '-']).map(|p| p.parse::<u32>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) if (major, minor) < (5, 1) => "-vsync",
            _ => "-fps_mode",
        }
    })
}

fn spawn_error(tool: &str, path: &Path, e: std::io::Error) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::ToolMissing {
            tool: tool.into(),
            purpose: "video input".into(),
        }
    } else {
        Error::Video {
            path: path.into(),
            reason: format!("cannot run {tool}: {e}"),
        }
    }
}

/// Runs ffprobe on `input` (FFmpeg input options and `-i INPUT`) and reads its first video
/// stream.
fn probe(path: &Path, input: &[OsString]) -> Result<Probe> {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-v", "error"])
        .args(input)
        .args(["-show_streams", "-show_format", "-of", "json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error("ffprobe", path, e))?;
    let video_err = |reason: String| Error::Video {
        path: path.into(),
        reason,
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(video_err(match last_line(&stderr) {
            Some(l) => format!("FFmpeg cannot read it: {l}"),
            None => format!("FFmpeg cannot read it (ffprobe {})", out.status),
        }));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| video_err(format!("unreadable ffprobe output: {e}")))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let Some(v) = streams.iter().find(|s| {
        s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64().unwrap_or(0) == 0
    }) else {
        let kinds: Vec<&str> = streams
            .iter()
            .filter_map(|s| s["codec_type"].as_str())
            .collect();
        return Err(video_err(if kinds.is_empty() {
            "no video stream (no stream at all: FFmpeg does not recognise it as media)".into()
        } else {
            format!("no video stream (it has: {})", kinds.join(", "))
        }));
    };
    let dim = |k: &str| v[k].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
    let (mut width, mut height) = (dim("width"), dim("height"));
    let rotation = v["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_f64()))
        .or_else(|| v["tags"]["rotate"].as_str().and_then(|r| r.parse().ok()))
        .unwrap_or(0.0);
    if (rotation.rem_euclid(180.0) - 90.0).abs() < 1.0 {
        std::mem::swap(&mut width, &mut height);
    }
    check_size(&path.display().to_string(), width, height).map_err(|e| match e {
        Error::Video { reason, .. } => video_err(reason),
        e => e,
    })?;
    let fps = rate(&v["avg_frame_rate"])
        .or_else(|| rate(&v["r_frame_rate"]))
        .ok_or_else(|| video_err("the video stream has no frame rate".into()))?;
    let number = |x: &Value| -> Option<f64> {
        x.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| x.as_f64())
            .filter(|d| d.is_finite() && *d > 0.0)
    };
    let duration_s = number(&v["duration"]).or_else(|| number(&json["format"]["duration"]));
    let frames = v["nb_frames"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&n| n > 0);
    Ok(Probe {
        stream: v["index"].as_u64().unwrap_or(0),
        width,
        height,
        fps,
        frames,
        duration_s,
    })
}

/// `"30000/1001"` -> 29.97; `None` for `0/0` and nonsense.
fn rate(v: &Value) -> Option<f64> {
    let s = v.as_str()?;
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let r = n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?;
    (r.is_finite() && r > 0.0 && r <= 1000.0).then_some(r)
}
