//! The library's error type.
//!
//! Every variant says what went wrong *and* where (a file, a manifest key, a
//! node of a model), so the message a user sees is enough to act on. The
//! binary adds context with `anyhow`; the library never panics on bad input.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors returned by seqrec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written. Check the path and permissions.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not audio in a format seqrec decodes (WAV, FLAC, MP3, OGG/Vorbis).
    /// Convert it, e.g. `ffmpeg -i IN -ar 16000 OUT.wav`.
    #[error("{}: not a supported audio file: {reason} (seqrec reads WAV, FLAC, MP3 and OGG/Vorbis)", path.display())]
    UnsupportedAudio {
        /// The file concerned.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// The audio file is damaged: truncated, inconsistent headers, invalid samples.
    /// Re-export or re-record it; retrying will not help.
    #[error("{}: corrupt audio: {reason}", path.display())]
    CorruptAudio {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A `.npy` array is malformed or of a type seqrec does not handle
    /// (it reads and writes little-endian float32, C order).
    #[error("{}: bad .npy file: {reason}", path.display())]
    Npy {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A model bundle's manifest is missing, malformed, or names a file that does not exist.
    #[error("bundle {}: {key}: {reason}", path.display())]
    Bundle {
        /// The manifest (or bundle directory).
        path: PathBuf,
        /// The manifest key concerned (dotted, e.g. `features.n_fft`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A setting (from flags, a manifest, or an API call) is out of range or inconsistent.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidConfig {
        /// The setting concerned.
        name: String,
        /// Why it is invalid.
        reason: String,
    },

    /// The ONNX Runtime shared library could not be found or loaded.
    #[error(
        "ONNX Runtime library not found ({reason}).\n  Fix: run `scripts/setup.sh` (it unpacks libonnxruntime from the onnxruntime==1.31.1 wheel into .ort/), \
         or set ORT_DYLIB_PATH=/path/to/libonnxruntime.so.1.31.1, or put libonnxruntime.so next to the seqrec binary.\n  Tried: {tried}"
    )]
    RuntimeMissing {
        /// Why loading failed.
        reason: String,
        /// The places that were tried, `; `-separated.
        tried: String,
    },

    /// ONNX Runtime returned an error while building a session or running a model.
    #[error("ONNX Runtime: {0}")]
    Ort(String),

    /// The ONNX file is not a well-formed model.
    #[error("{}: invalid ONNX model: {reason}", path.display())]
    InvalidModel {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The model is valid ONNX, but the native backend does not support its structure.
    /// Run it with `--backend ort` instead.
    #[error("{}: node `{node}`: {reason}; the native backend runs unidirectional RNN/LSTM/GRU stacks with an optional dense head — use `--backend ort` for other models", path.display())]
    UnsupportedModel {
        /// The model file.
        path: PathBuf,
        /// The node (name, or op type when unnamed) that was refused.
        node: String,
        /// Why it was refused.
        reason: String,
    },

    /// `seqrec enroll` cannot make templates from the recordings given: too
    /// few, silent, too long, or the word too close to the start. Record the
    /// word alone, 3-5 times, with half a second of quiet around it.
    #[error("enrolling `{keyword}`: {reason}")]
    Enroll {
        /// The keyword being enrolled.
        keyword: String,
        /// What is wrong.
        reason: String,
    },

    /// An array does not have the shape an operation needs.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// An audio input device could not be found, opened or configured, or it failed while
    /// capturing (unplugged, sound server stopped). Run `seqrec devices` to list the input
    /// devices and pick one with `--device`; after a failure, reopen the device.
    #[error(
        "audio input `{device}`: {reason}\n  Run `seqrec devices` to list the input devices, and pick one with `--device NAME|INDEX`."
    )]
    Device {
        /// The device concerned (its name, or what the user asked for).
        device: String,
        /// What went wrong.
        reason: String,
    },

    /// A video file or live FFmpeg input could not be decoded: not a video FFmpeg reads, no
    /// video stream, corrupt or truncated data, an absurd frame size. The reason carries
    /// FFmpeg's own last error line when there is one.
    #[error("{}: video: {reason}", path.display())]
    Video {
        /// The file (or, for a live input, the FFmpeg input arguments).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// An external tool seqrec runs (`ffmpeg`, `ffprobe`) is not installed.
    #[error(
        "`{tool}` not found on PATH: {purpose} needs FFmpeg.\n  Fix: `sudo apt-get install ffmpeg` (or run scripts/setup.sh)."
    )]
    ToolMissing {
        /// The program that could not be started.
        tool: String,
        /// What it was needed for.
        purpose: String,
    },

    /// A camera could not be found, opened or configured, or it stopped delivering frames.
    /// Check the device (`ls /dev/video*`, `v4l2-ctl --list-devices`) and that it is not in use.
    #[error("camera `{device}`: {reason}")]
    Camera {
        /// The device concerned (its path, index or name as asked for).
        device: String,
        /// What went wrong.
        reason: String,
    },

    /// A NATS / JetStream operation failed for longer than seqrec retries it
    /// (30 s): the cluster is unreachable, has lost its quorum, or refused a
    /// stream, bucket or message. Check `nats-server` on the URLs given
    /// (JetStream on: `-js`) and that a majority of its nodes is up.
    #[error("NATS: {what}: {reason}")]
    Cluster {
        /// What seqrec was doing.
        what: String,
        /// What the client or server said.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Cluster`].
    pub fn cluster(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Cluster {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Ort(e.to_string())
    }
}
