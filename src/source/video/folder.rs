//! A folder of still images as a video.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use image::ImageReader;

use super::queue::{Consumer, Packet, Producer, queue};
use super::{Frame, QUEUE_FRAMES, VideoInfo, VideoSource, check_size};
use crate::{Error, Result};

/// Extensions [`ImageFolder`] reads (compared case-insensitively); other files are ignored.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp"];

/// The images of a folder (PNG, JPEG, BMP), sorted by file name, as frames at a fixed rate.
///
/// Frame `i` is the `i`-th image, at `i / fps` seconds. All images must have the size of the
/// first one. Images are decoded (by the [image] crate) in a reader thread a few frames ahead
/// of the consumer (like a video file's decoder), so a folder of thousands of images costs a
/// few frames of memory and decoding overlaps whatever consumes the frames; grey and alpha
/// images become RGB.
pub struct ImageFolder {
    info: VideoInfo,
    files: Vec<PathBuf>,
    consumer: Option<Consumer>,
    reader: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ImageFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFolder")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ImageFolder {
    /// Lists `dir` and decodes its first image for the frame size.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be listed, [`Error::InvalidConfig`] for a bad `fps`,
    /// [`Error::Video`] when it holds no image or the first one cannot be decoded.
    pub fn open(dir: impl AsRef<Path>, fps: f64) -> Result<Self> {
        let dir = dir.as_ref();
        if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
            return Err(Error::config("fps", format!("{fps} is not in (0, 1000]")));
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if path.is_file() && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
                files.push(path);
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let Some(first) = files.first() else {
            return Err(Error::Video {
                path: dir.into(),
                reason: format!(
                    "no image in the folder (seqrec reads {})",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            });
        };
        let (width, height) = ImageReader::open(first)
            .map_err(|e| Error::io(first, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(first, e))?
            .into_dimensions()
            .map_err(|e| Error::Video {
                path: first.clone(),
                reason: format!("cannot decode the image: {e}"),
            })?;
        check_size(&first.display().to_string(), width, height)?;
        let n = files.len() as u64;
        let info = VideoInfo {
            name: dir.display().to_string(),
            width,
            height,
            fps,
            frames: Some(n),
            duration_s: Some(n as f64 / fps),
        };
        let (producer, consumer) = queue(QUEUE_FRAMES, false, None);
        let (list, size) = (files.clone(), (width, height));
        let reader = std::thread::Builder::new()
            .name("seqrec-images".into())
            .spawn(move || decode_all(&list, size, fps, producer))
            .map_err(|e| Error::io(dir, e))?;
        Ok(Self {
            info,
            files,
            consumer: Some(consumer),
            reader: Some(reader),
        })
    }

    /// The image files, in frame order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl VideoSource for ImageFolder {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read(&mut self, frame: &mut Frame) -> Result<bool> {
        match &mut self.consumer {
            Some(c) => c.read(frame, &self.info.name),
            None => Ok(false),
        }
    }
}

impl Drop for ImageFolder {
    fn drop(&mut self) {
        // Stop and drop the consumer first: a reader blocked on a full queue
        // then sees the channel closed and ends.
        if let Some(c) = self.consumer.take() {
            c.stop();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The reader thread: decodes `files` in order into the queue; the first
/// bad image ends the stream with its error (after the frames before it).
fn decode_all(files: &[PathBuf], (width, height): (u32, u32), fps: f64, mut producer: Producer) {
    for (i, path) in files.iter().enumerate() {
        if producer.stopped() {
            return;
        }
        let bad = |reason: String| Error::Video {
            path: path.clone(),
            reason,
        };
        let decoded = (|| {
            let reader = ImageReader::open(path)
                .map_err(|e| Error::io(path, e))?
                .with_guessed_format()
                .map_err(|e| Error::io(path, e))?;
            let (w, h) = reader
                .into_dimensions()
                .map_err(|e| bad(format!("cannot decode the image: {e}")))?;
            if (w, h) != (width, height) {
                return Err(bad(format!(
                    "image is {w}x{h} but the folder's first image is {width}x{height} (all frames must have one size)"
                )));
            }
            ImageReader::open(path)
                .map_err(|e| Error::io(path, e))?
                .with_guessed_format()
                .map_err(|e| Error::io(path, e))?
                .decode()
                .map_err(|e| bad(format!("cannot decode the image: {e}")))
        })();
        let img = match decoded {
            Ok(img) => img.into_rgb8(),
            Err(e) => {
                producer.fail(e);
                return;
            }
        };
        let mut rgb = producer.buffer(0);
        rgb.extend_from_slice(img.as_raw());
        let packet = Packet {
            index: i as u64,
            pts_s: i as f64 / fps,
            width,
            height,
            rgb,
        };
        if !producer.push(packet) {
            return;
        }
    }
}
