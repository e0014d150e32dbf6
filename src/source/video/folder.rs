//! A folder of still images as a video.

use std::path::{Path, PathBuf};

use image::ImageReader;

use super::{Frame, VideoInfo, VideoSource, check_size};
use crate::{Error, Result};

/// Extensions [`ImageFolder`] reads (compared case-insensitively); other files are ignored.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp"];

/// The images of a folder (PNG, JPEG, BMP), sorted by file name, as frames at a fixed rate.
///
/// Frame `i` is the `i`-th image, at `i / fps` seconds. All images must have the size of the
/// first one. Images are decoded (by the [image] crate) when they are read, so a folder of
/// thousands of images costs one frame of memory; grey and alpha images become RGB.
#[derive(Debug)]
pub struct ImageFolder {
    info: VideoInfo,
    files: Vec<PathBuf>,
    next: usize,
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
        Ok(Self {
            info: VideoInfo {
                name: dir.display().to_string(),
                width,
                height,
                fps,
                frames: Some(n),
                duration_s: Some(n as f64 / fps),
            },
            files,
            next: 0,
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
        let Some(path) = self.files.get(self.next) else {
            return Ok(false);
        };
        let bad = |reason: String| Error::Video {
            path: path.clone(),
            reason,
        };
        let reader = ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?;
        let (w, h) = reader
            .into_dimensions()
            .map_err(|e| bad(format!("cannot decode the image: {e}")))?;
        if (w, h) != (self.info.width, self.info.height) {
            return Err(bad(format!(
                "image is {w}x{h} but the folder's first image is {}x{} (all frames must have one size)",
                self.info.width, self.info.height
            )));
        }
        let img = ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?
            .decode()
            .map_err(|e| bad(format!("cannot decode the image: {e}")))?;
        let rgb = img.into_rgb8();
        frame.index = self.next as u64;
        frame.pts_s = self.next as f64 / self.info.fps;
        frame.width = w;
        frame.height = h;
        frame.rgb.clear();
        frame.rgb.extend_from_slice(rgb.as_raw());
        self.next += 1;
        Ok(true)
    }
}
