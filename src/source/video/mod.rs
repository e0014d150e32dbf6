//! Video sources: where frames come from (video files, live FFmpeg inputs, image folders,
//! cameras).
//!
//! Every source yields RGB24 frames through [`VideoSource`], so the pipeline treats a file, a
//! live stream and a folder of images alike:
//!
//! * [`FfmpegVideo`]: any video file FFmpeg decodes (MP4/H.264, WebM/VP9, AVI/MJPEG, MKV, ...),
//!   through the `ffmpeg` and `ffprobe` programs, and live FFmpeg inputs
//!   ([`FfmpegVideo::live`], e.g. `-f lavfi -i testsrc` or `-f v4l2 -i /dev/video0`);
//! * [`ImageFolder`]: a folder of PNG/JPEG/BMP images, in name order, at a given rate;
//! * [`Camera`]: a V4L2 camera (through FFmpeg's `v4l2` input, see [`camera`]).
//!
//! Decoding runs in a reader thread that feeds a small bounded queue, so decoding overlaps
//! whatever consumes the frames. For files the queue applies back-pressure (no frame is lost);
//! for live inputs the reader never waits: when the queue is full the *oldest* frame is dropped
//! and counted ([`VideoSource::dropped_frames`]), so a slow consumer always gets the freshest
//! frames and the input is never stalled. Frame buffers travel back to the reader once used, so
//! steady-state decoding allocates nothing.

pub mod camera;
mod ffmpeg;
mod folder;
mod queue;

pub use camera::Camera;
pub use ffmpeg::{FfmpegVideo, StopHandle};
pub use folder::{IMAGE_EXTENSIONS, ImageFolder};

use std::path::Path;

use crate::{Error, Result};

/// Largest frame side accepted from a file header, a probe or an image (pixels).
pub const MAX_DIMENSION: u32 = 16_384;

/// Largest frame accepted (pixels): a bit more than 8K UHD (7680x4320). Bounds the memory a
/// header can make seqrec allocate (about 100 MB per RGB24 frame).
pub const MAX_PIXELS: u64 = 36_000_000;

/// Frames a source decodes ahead of its consumer.
pub const QUEUE_FRAMES: usize = 4;

/// One RGB24 video frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// Index of the frame in its source, from 0 (indices skipped by drops or decimation stay
    /// skipped: this is the source's numbering).
    pub index: u64,
    /// Presentation time in seconds from the start of the source.
    pub pts_s: f64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height * width * 3` bytes, RGB, row-major, no padding. Sources reuse this buffer.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// An empty frame, to be filled by [`VideoSource::read`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The `[r, g, b]` pixel at column `x`, row `y`.
    ///
    /// # Panics
    /// If `(x, y)` is outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside the frame"
        );
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// What a video source delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The file, folder, device or input it reads (for messages and records).
    pub name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second (nominal: the container's average rate for files).
    pub fps: f64,
    /// Number of frames, when known in advance (files whose container says so, folders).
    pub frames: Option<u64>,
    /// Duration in seconds, when known in advance.
    pub duration_s: Option<f64>,
}

/// A stream of RGB24 frames.
pub trait VideoSource: Send {
    /// What this source delivers.
    fn info(&self) -> &VideoInfo;

    /// Fills `frame` with the next frame (reusing its buffer) and returns `Ok(true)`; returns
    /// `Ok(false)` at the end of a file, or when a live source ended or was stopped.
    ///
    /// # Errors
    /// [`Error::Video`] for undecodable or truncated data (frames before it were delivered),
    /// [`Error::Camera`] when a camera fails.
    fn read(&mut self, frame: &mut Frame) -> Result<bool>;

    /// Frames lost because the consumer fell behind (live sources only).
    fn dropped_frames(&self) -> u64 {
        0
    }
}

impl<S: VideoSource + ?Sized> VideoSource for Box<S> {
    fn info(&self) -> &VideoInfo {
        (**self).info()
    }
    fn read(&mut self, frame: &mut Frame) -> Result<bool> {
        (**self).read(frame)
    }
    fn dropped_frames(&self) -> u64 {
        (**self).dropped_frames()
    }
}

/// Opens a video file with [`FfmpegVideo::open`], or a folder of images with
/// [`ImageFolder::open`] at `folder_fps` frames per second (30 when `None`).
///
/// # Errors
/// See [`FfmpegVideo::open`] and [`ImageFolder::open`].
pub fn open(path: &Path, folder_fps: Option<f64>) -> Result<Box<dyn VideoSource>> {
    if path.is_dir() {
        Ok(Box::new(ImageFolder::open(
            path,
            folder_fps.unwrap_or(30.0),
        )?))
    } else {
        Ok(Box::new(FfmpegVideo::open(path)?))
    }
}

/// Checks a frame size from an untrusted header before anything is allocated for it.
pub(crate) fn check_size(name: &str, width: u32, height: u32) -> Result<()> {
    let reason = if width == 0 || height == 0 {
        format!("invalid frame size {width}x{height}")
    } else if width > MAX_DIMENSION
        || height > MAX_DIMENSION
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        format!(
            "frame size {width}x{height} is too large (seqrec accepts up to {MAX_DIMENSION} pixels a side and {MAX_PIXELS} pixels a frame)"
        )
    } else {
        return Ok(());
    };
    Err(Error::Video {
        path: name.into(),
        reason,
    })
}
