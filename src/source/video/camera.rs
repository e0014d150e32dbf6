//! Cameras, through [nokhwa] (V4L2 on Linux).
//!
//! [`Camera`] is deliberately thin: a capture thread opens the device, converts each nokhwa frame
//! (MJPEG, YUYV, ...) to RGB24 and pushes it into the same drop-oldest queue as live FFmpeg
//! inputs, so a slow consumer loses the oldest frames (counted) and never stalls the camera.
//! Timestamps are wall-clock seconds since the first frame.
//!
//! There is no camera on the machines the tests run on; the tests only check that a missing
//! device is a clear [`Error::Camera`].

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use super::ffmpeg::StopHandle;
use super::queue::{Consumer, Packet, queue};
use super::{Frame, QUEUE_FRAMES, VideoInfo, VideoSource, check_size};
use crate::{Error, Result};

/// A camera that delivers no frame for this long is an error.
const STALL: Duration = Duration::from_secs(10);

/// A camera (V4L2 device) as a live [`VideoSource`].
pub struct Camera {
    info: VideoInfo,
    consumer: Option<Consumer>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// One camera the system knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraDevice {
    /// What to pass to [`Camera::open`] (the index, as text).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Driver description.
    pub description: String,
}

/// Lists the cameras (empty when there is none).
///
/// # Errors
/// [`Error::Camera`] when the system cannot be queried.
pub fn list() -> Result<Vec<CameraDevice>> {
    let cams = nokhwa::query(ApiBackend::Auto).map_err(|e| Error::Camera {
        device: "*".into(),
        reason: format!("cannot list cameras: {e}"),
    })?;
    Ok(cams
        .into_iter()
        .map(|c| CameraDevice {
            id: c.index().to_string(),
            name: c.human_name(),
            description: c.description().to_string(),
        })
        .collect())
}

/// `"0"`, `"/dev/video0"` -> index 0; anything else is looked up by name.
fn resolve(device: &str) -> Result<CameraIndex> {
    let d = device.trim();
    if let Ok(i) = d.parse::<u32>() {
        return Ok(CameraIndex::Index(i));
    }
    if let Some(i) = d
        .strip_prefix("/dev/video")
        .and_then(|n| n.parse::<u32>().ok())
    {
        return Ok(CameraIndex::Index(i));
    }
    let cams = list().unwrap_or_default();
    let low = d.to_lowercase();
    cams.iter()
        .find(|c| c.name.to_lowercase() == low)
        .or_else(|| cams.iter().find(|c| c.name.to_lowercase().contains(&low)))
        .map(|c| CameraIndex::String(c.id.clone()))
        .map(|i| match i.as_index() {
            Ok(n) => CameraIndex::Index(n),
            Err(_) => i,
        })
        .ok_or_else(|| Error::Camera {
            device: device.into(),
            reason: if cams.is_empty() {
                "no such camera: no camera found on this system (`ls /dev/video*` lists V4L2 devices)".into()
            } else {
                format!(
                    "no camera with that name or index; cameras: {}",
                    cams.iter()
                        .map(|c| format!("{} `{}`", c.id, c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        })
}

impl Camera {
    /// Opens a camera by index (`"0"`, `"/dev/video0"`) or by (part of its) name, asking for
    /// the resolution and frame rate closest to `resolution` and `fps` (the camera's highest
    /// frame rate when neither is given).
    ///
    /// # Errors
    /// [`Error::Camera`] when the device does not exist, cannot be opened (in use, no
    /// permission) or configured.
    pub fn open(device: &str, resolution: Option<(u32, u32)>, fps: Option<u32>) -> Result<Self> {
        let index = resolve(device)?;
        let requested = match (resolution, fps) {
            (None, None) => RequestedFormatType::AbsoluteHighestFrameRate,
            (None, Some(f)) => RequestedFormatType::HighestFrameRate(f),
            (Some((w, h)), f) => RequestedFormatType::Closest(CameraFormat::new(
                Resolution::new(w, h),
                FrameFormat::MJPEG,
                f.unwrap_or(30),
            )),
        };
        let (producer, consumer) = queue(QUEUE_FRAMES, true, Some(STALL));
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(u32, u32, u32)>>(1);
        let dev = device.to_string();
        let camera_err = move |what: &str, e: nokhwa::NokhwaError| Error::Camera {
            device: dev.clone(),
            reason: format!("{what}: {e}"),
        };
        let name = device.to_string();
        let thread = std::thread::Builder::new()
            .name("seqrec-camera".into())
            .spawn(move || {
                let mut producer = producer;
                let opened =
                    nokhwa::Camera::new(index, RequestedFormat::new::<RgbFormat>(requested))
                        .map_err(|e| camera_err("cannot open", e))
                        .and_then(|mut cam| {
                            cam.open_stream()
                                .map_err(|e| camera_err("cannot start streaming", e))?;
                            let f = cam.camera_format();
                            let (w, h) = (f.resolution().width(), f.resolution().height());
                            check_size(&name, w, h)?;
                            Ok((cam, (w, h, f.frame_rate())))
                        });
                let mut cam = match opened {
                    Ok((cam, format)) => {
                        let _ = ready_tx.send(Ok(format));
                        cam
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut start: Option<Instant> = None;
                let mut index = 0u64;
                while !producer.stopped() {
                    let buffer = match cam.frame() {
                        Ok(b) => b,
                        Err(e) => {
                            producer.fail(camera_err("capture failed", e));
                            break;
                        }
                    };
                    let pts_s = start
                        .get_or_insert_with(Instant::now)
                        .elapsed()
                        .as_secs_f64();
                    let res = buffer.resolution();
                    let (w, h) = (res.width(), res.height());
                    if let Err(e) = check_size(&name, w, h) {
                        producer.fail(e);
                        break;
                    }
                    let mut rgb = producer.buffer(w as usize * h as usize * 3);
                    if let Err(e) = buffer.decode_image_to_buffer::<RgbFormat>(&mut rgb) {
                        producer.fail(camera_err("cannot decode a frame", e));
                        break;
                    }
                    let packet = Packet {
                        index,
                        pts_s,
                        width: w,
                        height: h,
                        rgb,
                    };
                    if !producer.push(packet) {
                        break;
                    }
                    index += 1;
                }
                let _ = cam.stop_stream();
            })
            .map_err(|e| Error::Camera {
                device: device.into(),
                reason: format!("cannot start the capture thread: {e}"),
            })?;
        let mut cam = Camera {
            info: VideoInfo {
                name: device.into(),
                width: 0,
                height: 0,
                fps: 0.0,
                frames: None,
                duration_s: None,
            },
            consumer: Some(consumer),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(STALL) {
            Ok(Ok((w, h, f))) => {
                cam.info.width = w;
                cam.info.height = h;
                cam.info.fps = f64::from(f);
                Ok(cam)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Camera {
                device: device.into(),
                reason: "the camera did not open within 10 s".into(),
            }),
        }
    }

    /// A handle that stops this camera from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle::from_fn(
            self.consumer
                .as_ref()
                .expect("consumer present until drop")
                .stop_flag(),
        )
    }
}

impl VideoSource for Camera {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read(&mut self, frame: &mut Frame) -> Result<bool> {
        match &mut self.consumer {
            Some(c) => c.read(frame, &self.info.name).map_err(|e| match e {
                Error::Video { reason, .. } => Error::Camera {
                    device: self.info.name.clone(),
                    reason,
                },
                e => e,
            }),
            None => Ok(false),
        }
    }

    fn dropped_frames(&self) -> u64 {
        self.consumer.as_ref().map_or(0, Consumer::dropped)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            c.stop();
        }
        // The capture thread notices the stop after the frame it waits for; a camera that hung
        // is left to its thread rather than hanging the caller.
        if let Some(t) = self.thread.take() {
            for _ in 0..100 {
                if t.is_finished() {
                    let _ = t.join();
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
