//! ONNX Runtime discovery and session building: the one place that knows
//! where `libonnxruntime` lives.
//!
//! seqrec links ONNX Runtime dynamically (the `ort` crate's `load-dynamic`
//! feature) so that nothing is downloaded at build time. The library is looked
//! up, in order:
//!
//! 1. `ORT_DYLIB_PATH`, if set (an error if it points nowhere);
//! 2. `libonnxruntime.so*` beside the running executable, or in `../lib`
//!    relative to it (the layout of an installed or copied binary);
//! 3. `.ort/onnxruntime/capi/libonnxruntime.so.1.31.1` in the current
//!    directory or any ancestor of the executable (a source checkout, where
//!    `scripts/setup.sh` unpacks it from the `onnxruntime==1.31.1` wheel).
//!
//! When none is found, [`init`] returns [`Error::RuntimeMissing`] with the fix,
//! instead of the panic `ort` would raise.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::{Error, Result};

/// The ONNX Runtime version the `ort` bindings are built for.
pub const ORT_VERSION: &str = "1.31.1";

const CHECKOUT_REL: &str = ".ort/onnxruntime/capi/libonnxruntime.so.1.31.1";

/// The loaded library's path and the process-wide ONNX Runtime environment.
static INIT: OnceLock<std::result::Result<(PathBuf, ort::environment::Environment), String>> =
    OnceLock::new();

fn lib_names() -> [String; 2] {
    [
        format!("libonnxruntime.so.{ORT_VERSION}"),
        "libonnxruntime.so".to_string(),
    ]
}

/// Candidate library paths, in search order (see the module docs).
pub fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
        return out;
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for name in lib_names() {
            out.push(dir.join(&name));
            out.push(dir.join("../lib").join(&name));
        }
        for anc in dir.ancestors() {
            out.push(anc.join(CHECKOUT_REL));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        out.push(cwd.join(CHECKOUT_REL));
    }
    out
}

fn find_library() -> std::result::Result<PathBuf, String> {
    let tried = candidates();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "ORT_DYLIB_PATH is set to {}, which is not a file",
                p.display()
            ))
        };
    }
    tried
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| "no libonnxruntime found".to_string())
}

/// Loads ONNX Runtime (once per process) and returns the library path.
///
/// # Errors
/// [`Error::RuntimeMissing`] when no library is found or it cannot be loaded
/// (e.g. an older version than [`ORT_VERSION`]).
pub fn init() -> Result<&'static Path> {
    environment().map(|(p, _)| p)
}

fn environment() -> Result<(&'static Path, &'static ort::environment::Environment)> {
    let res = INIT.get_or_init(|| {
        let path = find_library()?;
        let path = path.canonicalize().unwrap_or(path);
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        // Telemetry off: this is an offline tool.
        let env = builder
            .with_name("seqrec")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok((path, env))
    });
    match res {
        Ok((p, env)) => Ok((p.as_path(), env)),
        Err(reason) => Err(Error::RuntimeMissing {
            reason: reason.clone(),
            tried: candidates()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

/// Options for [`session`].
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Threads ONNX Runtime may use inside one operator (default 1: seqrec
    /// parallelises across streams or files instead, which scales better for
    /// small recurrent models).
    pub intra_threads: usize,
    /// Let ONNX Runtime's intra-op threads spin while waiting for work
    /// (its default). Off for the embedder's CNN in batch processing:
    /// spinning threads take the cores that decoding and preprocessing need
    /// at the same time (measured on 2 cores: 127 -> 148 video frames/s with
    /// spinning off).
    pub spinning: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_threads: 1,
            spinning: true,
        }
    }
}

/// Builds an ONNX Runtime session for `model`. Sessions are not shared across
/// threads (`Session::run` takes `&mut self`): build one per worker.
///
/// # Errors
/// [`Error::RuntimeMissing`] if ONNX Runtime cannot be loaded, [`Error::Io`]
/// if the file is missing, [`Error::InvalidModel`] if ONNX Runtime rejects it.
pub fn session(model: &Path, opts: SessionOptions) -> Result<Session> {
    let (_, env) = environment()?;
    if !model.is_file() {
        return Err(Error::io(
            model,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        ));
    }
    let invalid = |e: ort::Error| Error::InvalidModel {
        path: model.to_path_buf(),
        reason: e.to_string(),
    };
    let mut builder = Session::builder(env)
        .map_err(invalid)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| invalid(e.into()))?
        .with_intra_threads(opts.intra_threads.max(1))
        .map_err(|e| invalid(e.into()))?;
    if !opts.spinning && opts.intra_threads > 1 {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| invalid(e.into()))?;
    }
    builder.commit_from_file(model).map_err(invalid)
}
