//! Model bundles: a directory with a `bundle.toml` manifest and the files it names.
//!
//! A bundle says everything needed to run a recognizer on raw input: the
//! input kind and rate, the feature settings, the ONNX file(s), how the
//! recurrent state goes in and out, the labels and the decision settings.
//! It is parsed and validated once, at load; every error names the manifest
//! key (dotted, e.g. `features.n_fft`) or the file at fault. The format is
//! documented in `models/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::embed::EmbedderSection;
use crate::features::FeatureConfig;
use crate::features::pose::PoseSection;
use crate::features::video::VideoConfig;
use crate::{Error, Result};

/// The manifest's file name inside a bundle directory.
pub const MANIFEST: &str = "bundle.toml";

/// What a bundle consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// Audio samples (microphone, audio files).
    Audio,
    /// Video frames (camera, video files, image folders).
    Video,
}

/// Which engine runs the recurrent model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// seqrec's own RNN/LSTM/GRU kernels (weights imported from the ONNX file).
    #[default]
    Native,
    /// ONNX Runtime, for any model whose state goes in and out as tensors.
    Ort,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Backend::Native),
            "ort" => Ok(Backend::Ort),
            _ => Err(Error::config(
                "backend",
                format!("`{s}` is not one of native, ort"),
            )),
        }
    }
}

/// `[audio]`: how raw audio is prepared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// Rate the model expects; input at other rates is resampled to it.
    pub sample_rate: u32,
}

/// A constant extra input of an ONNX model (e.g. Silero VAD's `sr`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ConstantValue {
    /// An int64 scalar.
    Int(i64),
    /// A float32 scalar.
    Float(f64),
}

/// `[sequence]`: the recurrent model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceSection {
    /// The ONNX file, relative to the bundle directory (or `templates`).
    #[serde(default)]
    pub onnx: PathBuf,
    /// Instead of a network: keyword templates, a float32 .npy
    /// `[templates, steps, dims]` that `seqrec enroll` writes (see
    /// [`crate::sequence::templates`]).
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// With `templates`: the label (index into `labels`, >= 1; label 0 is
    /// the background) of each template.
    #[serde(default)]
    pub template_labels: Vec<usize>,
    /// With `templates`: per label, the distance that scores 0.5 (the
    /// background's, first, is not used).
    #[serde(default)]
    pub template_scales: Vec<f32>,
    /// With `templates`: a float32 .npy `[2, dims]`, the mean and spread
    /// every step is standardized with before matching.
    #[serde(default)]
    pub template_center: Option<PathBuf>,
    /// Which engine runs it. Default `native`.
    #[serde(default)]
    pub backend: Backend,
    /// Name of the per-step input. Default: the first graph input that is
    /// neither a state nor a constant.
    #[serde(default)]
    pub input: Option<String>,
    /// Name of the output to read. Default: the first graph output that is not a state.
    #[serde(default)]
    pub output: Option<String>,
    /// State pairs `[input_name, output_name]`: the output of one call is fed
    /// to the input of the next.
    #[serde(default)]
    pub state: Vec<[String; 2]>,
    /// Constant extra inputs, by name.
    #[serde(default)]
    pub constants: BTreeMap<String, ConstantValue>,
}

/// `[decision]`: how per-frame posteriors become events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionSection {
    /// Moving-average window over posteriors, seconds. Default 0 (none).
    #[serde(default)]
    pub smoothing_s: f64,
    /// Score at which an event starts. Default 0.5.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Per-label thresholds overriding `threshold`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Score below which an event ends (hysteresis). Default: `threshold`.
    #[serde(default)]
    pub off_threshold: Option<f64>,
    /// Events shorter than this are dropped, seconds. Default 0.
    #[serde(default)]
    pub min_duration_s: f64,
    /// After an event of a label ends, that label cannot start again for this long, seconds. Default 0.
    #[serde(default)]
    pub refractory_s: f64,
    /// Labels that never produce events (e.g. `_silence_`, `_unknown_`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// An event ends only once its score has stayed below `off_threshold`
    /// this long, seconds (a score back at `threshold` cancels the wait).
    /// Default 0: the first frame below ends it.
    #[serde(default)]
    pub min_silence_s: f64,
    /// Padding added before the start and after the end of each event,
    /// seconds (starts are clamped at 0). Default 0.
    #[serde(default)]
    pub pad_s: f64,
}

fn default_threshold() -> f64 {
    0.5
}

impl Default for DecisionSection {
    fn default() -> Self {
        DecisionSection {
            smoothing_s: 0.0,
            threshold: default_threshold(),
            thresholds: BTreeMap::new(),
            off_threshold: None,
            min_duration_s: 0.0,
            refractory_s: 0.0,
            ignore: Vec::new(),
            min_silence_s: 0.0,
            pad_s: 0.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    #[serde(default)]
    description: String,
    kind: InputKind,
    labels: Vec<String>,
    #[serde(default)]
    audio: Option<AudioSection>,
    #[serde(default)]
    features: Option<toml::Table>,
    #[serde(default)]
    video: Option<toml::Table>,
    #[serde(default)]
    embedder: Option<EmbedderSection>,
    #[serde(default)]
    pose: Option<PoseSection>,
    #[serde(default)]
    sequence: Option<SequenceSection>,
    #[serde(default)]
    decision: DecisionSection,
}

/// A loaded, validated bundle. Paths inside it are absolute (resolved against
/// the bundle directory).
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Short name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Audio or video.
    pub kind: InputKind,
    /// Output labels, in the order of the model's outputs.
    pub labels: Vec<String>,
    /// `[audio]` (present for audio bundles).
    pub audio: Option<AudioSection>,
    /// Feature settings (`[features]`, with `sample_rate` from `[audio]`).
    pub features: Option<FeatureConfig>,
    /// Video preprocessing (`[video]`, present for video bundles).
    pub video: Option<VideoConfig>,
    /// The CNN between features and the recurrent model (`[embedder]`,
    /// `onnx` resolved to an absolute path); required for video bundles.
    pub embedder: Option<EmbedderSection>,
    /// `[pose]`: the embedder gives body keypoints, followed by a crop and
    /// turned into features for the sequence model (video bundles).
    pub pose: Option<PoseSection>,
    /// The recurrent model, `onnx` resolved to an absolute path (absent in a
    /// features-only bundle).
    pub sequence: Option<SequenceSection>,
    /// Decision settings.
    pub decision: DecisionSection,
}

impl Bundle {
    /// Loads `dir/bundle.toml` (or a manifest file given directly) and validates it.
    ///
    /// # Errors
    /// [`Error::Bundle`] naming the key or file at fault; [`Error::Io`] if the
    /// manifest cannot be read.
    pub fn load(dir: impl AsRef<Path>) -> Result<Bundle> {
        let given = dir.as_ref();
        let (dir, manifest) = if given.is_file() {
            (
                given.parent().unwrap_or(Path::new(".")).to_path_buf(),
                given.to_path_buf(),
            )
        } else {
            (given.to_path_buf(), given.join(MANIFEST))
        };
        if !manifest.is_file() {
            return Err(Error::Bundle {
                path: given.to_path_buf(),
                key: MANIFEST.into(),
                reason: format!(
                    "no manifest: expected a directory containing {MANIFEST} (see models/README.md)"
                ),
            });
        }
        let text = std::fs::read_to_string(&manifest).map_err(|e| Error::io(&manifest, e))?;
        Self::parse(&text, &dir, &manifest)
    }

    /// Parses and validates manifest text. `dir` resolves relative paths;
    /// `manifest` is only used in error messages.
    ///
    /// # Errors
    /// As [`Bundle::load`].
    pub fn parse(text: &str, dir: &Path, manifest: &Path) -> Result<Bundle> {
        let err = |key: &str, reason: String| Error::Bundle {
            path: manifest.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| err("(syntax)", e.to_string()))?;
        let m: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            err(&key, e.into_inner().message().to_string())
        })?;

        if m.labels.is_empty() {
            return Err(err("labels", "must list at least one label".into()));
        }
        for (i, l) in m.labels.iter().enumerate() {
            if m.labels[..i].contains(l) {
                return Err(err("labels", format!("`{l}` appears twice")));
            }
        }
        if m.kind == InputKind::Audio && m.audio.is_none() {
            return Err(err(
                "audio",
                "an audio bundle needs an [audio] section with sample_rate".into(),
            ));
        }
        if let Some(a) = &m.audio
            && (a.sample_rate == 0 || a.sample_rate > 1_000_000)
        {
            return Err(err(
                "audio.sample_rate",
                format!("{} Hz is not in 1..=1000000", a.sample_rate),
            ));
        }
        let features = match m.features {
            None => None,
            Some(mut table) => {
                let rate = m.audio.as_ref().map(|a| a.sample_rate).unwrap_or(0);
                match table.get("sample_rate") {
                    Some(v) if v.as_integer() != Some(rate as i64) => {
                        return Err(err(
                            "features.sample_rate",
                            format!(
                                "{v} differs from audio.sample_rate ({rate}); set it once, in [audio]"
                            ),
                        ));
                    }
                    _ => {}
                }
                table.insert("sample_rate".into(), toml::Value::Integer(rate as i64));
                let cfg: FeatureConfig =
                    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                        err(
                            &format!("features.{}", e.path()),
                            e.into_inner().to_string(),
                        )
                    })?;
                cfg.validate().map_err(|e| match e {
                    Error::InvalidConfig { name, reason } => {
                        err(&format!("features.{name}"), reason)
                    }
                    other => other,
                })?;
                Some(cfg)
            }
        };

        let video = match m.video {
            None => None,
            Some(table) => {
                let cfg: VideoConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
                    .map_err(|e| err(&format!("video.{}", e.path()), e.into_inner().to_string()))?;
                // VideoConfig::validate names its keys `video.*` already.
                cfg.validate().map_err(|e| match e {
                    Error::InvalidConfig { name, reason } => err(&name, reason),
                    other => other,
                })?;
                Some(cfg)
            }
        };
        if m.kind == InputKind::Video {
            if video.is_none() {
                return Err(err(
                    "video",
                    "a video bundle needs a [video] section (model input size, normalisation)"
                        .into(),
                ));
            }
            if m.embedder.is_none() {
                return Err(err(
                    "embedder",
                    "a video bundle needs an [embedder] section (the CNN run on each frame)".into(),
                ));
            }
        }
        if m.pose.is_some() {
            if m.kind != InputKind::Video {
                return Err(err(
                    "pose",
                    "[pose] is for video bundles (a pose model on frames)".into(),
                ));
            }
            if let Some(e) = &m.embedder
                && (e.window, e.step) != (1, 1)
            {
                return Err(err(
                    "embedder.window",
                    "a [pose] bundle's embedder sees one frame per step: window = step = 1".into(),
                ));
            }
        }
        // a file the manifest names (`key`), resolved against the bundle
        let file = |key: &str, rel: &Path| -> Result<PathBuf> {
            let p = dir.join(rel);
            if p.is_file() {
                Ok(p)
            } else {
                Err(err(key, format!("file {} does not exist", p.display())))
            }
        };
        let mut embedder = m.embedder;
        if let Some(e) = embedder.as_mut() {
            e.onnx = file("embedder.onnx", &e.onnx)?;
            for (key, v) in [
                ("embedder.window", e.window),
                ("embedder.step", e.step),
                ("embedder.batch", e.batch),
                ("embedder.intra_threads", e.intra_threads),
            ] {
                if !(1..=4096).contains(&v) {
                    return Err(err(key, format!("{v} is not in 1..=4096")));
                }
            }
        }

        let mut sequence = m.sequence;
        if let Some(seq) = sequence.as_mut() {
            match (&seq.templates, seq.onnx.as_os_str().is_empty()) {
                (Some(t), true) => {
                    seq.templates = Some(file("sequence.templates", t)?);
                    if let Some(c) = &seq.template_center {
                        seq.template_center = Some(file("sequence.template_center", c)?);
                    }
                    if seq.template_labels.is_empty() {
                        return Err(err(
                            "sequence.template_labels",
                            "templates need the label of each template".into(),
                        ));
                    }
                    if seq.template_scales.len() != m.labels.len() {
                        return Err(err(
                            "sequence.template_scales",
                            format!(
                                "{} scales for {} labels (one per label, the background's first)",
                                seq.template_scales.len(),
                                m.labels.len()
                            ),
                        ));
                    }
                }
                (Some(_), false) => {
                    return Err(err(
                        "sequence",
                        "give either `onnx` (a network) or `templates`, not both".into(),
                    ));
                }
                (None, true) => {
                    return Err(err(
                        "sequence.onnx",
                        "missing: the recurrent model's ONNX file (or `templates`)".into(),
                    ));
                }
                (None, false) => seq.onnx = file("sequence.onnx", &seq.onnx)?,
            }
            for (i, [a, b]) in seq.state.iter().enumerate() {
                if a.is_empty() || b.is_empty() {
                    return Err(err(
                        &format!("sequence.state[{i}]"),
                        "state names must not be empty".into(),
                    ));
                }
            }
        }

        let d = &m.decision;
        let in_unit = |v: f64| (0.0..=1.0).contains(&v);
        if !in_unit(d.threshold) {
            return Err(err(
                "decision.threshold",
                format!("{} is not in [0, 1]", d.threshold),
            ));
        }
        if let Some(off) = d.off_threshold
            && (!in_unit(off) || off > d.threshold)
        {
            return Err(err(
                "decision.off_threshold",
                format!("{off} must be in [0, threshold]"),
            ));
        }
        for (label, &t) in &d.thresholds {
            if !m.labels.contains(label) {
                return Err(err(
                    &format!("decision.thresholds.{label}"),
                    "not one of `labels`".into(),
                ));
            }
            if !in_unit(t) {
                return Err(err(
                    &format!("decision.thresholds.{label}"),
                    format!("{t} is not in [0, 1]"),
                ));
            }
        }
        for label in &d.ignore {
            if !m.labels.contains(label) {
                return Err(err(
                    "decision.ignore",
                    format!("`{label}` is not one of `labels`"),
                ));
            }
        }
        for (key, v) in [
            ("decision.smoothing_s", d.smoothing_s),
            ("decision.min_duration_s", d.min_duration_s),
            ("decision.refractory_s", d.refractory_s),
            ("decision.min_silence_s", d.min_silence_s),
            ("decision.pad_s", d.pad_s),
        ] {
            if !(v.is_finite() && (0.0..=3600.0).contains(&v)) {
                return Err(err(key, format!("{v} is not in [0, 3600] seconds")));
            }
        }

        Ok(Bundle {
            dir: dir.to_path_buf(),
            name: m.name,
            description: m.description,
            kind: m.kind,
            labels: m.labels,
            audio: m.audio,
            features,
            video,
            embedder,
            pose: m.pose,
            sequence,
            decision: m.decision,
        })
    }

    /// The `[sequence]` section, or an error naming the bundle if it has none.
    ///
    /// # Errors
    /// [`Error::Bundle`] when the manifest has no `[sequence]` section.
    pub fn sequence(&self) -> Result<&SequenceSection> {
        self.sequence.as_ref().ok_or_else(|| Error::Bundle {
            path: self.dir.join(MANIFEST),
            key: "sequence".into(),
            reason: "this bundle has no [sequence] section (it only defines features)".into(),
        })
    }

    /// The feature settings, or an error naming the bundle if it has none.
    ///
    /// # Errors
    /// [`Error::Bundle`] when the manifest has no `[features]` section.
    pub fn feature_config(&self) -> Result<&FeatureConfig> {
        self.features.as_ref().ok_or_else(|| Error::Bundle {
            path: self.dir.join(MANIFEST),
            key: "features".into(),
            reason: "this bundle has no [features] section".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
kind = "audio"
labels = ["a", "b"]
[audio]
sample_rate = 16000
[features]
n_fft = 512
win_length = 400
hop_length = 160
n_mels = 40
fmin = 20.0
fmax = 7600.0
[sequence]
onnx = "m.onnx"
state = [["h0", "hn"]]
[decision]
threshold = 0.6
thresholds = { a = 0.7 }
"#;

    fn parse(text: &str) -> Result<Bundle> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"x").unwrap();
        Bundle::parse(text, dir.path(), &dir.path().join(MANIFEST))
    }

    fn key_of(text: &str) -> String {
        match parse(text) {
            Err(Error::Bundle { key, .. }) => key,
            other => panic!("expected a bundle error, got {other:?}"),
        }
    }

    /// Each (from, to, key): `base` with `from` replaced by `to` is refused,
    /// naming `key`.
    fn assert_keys(base: &str, cases: &[(&str, &str, &str)]) {
        for (from, to, key) in cases {
            assert_eq!(key_of(&base.replace(from, to)), *key, "{from} -> {to}");
        }
    }

    #[test]
    fn good_manifest() {
        let b = parse(GOOD).unwrap();
        let f = b.features.unwrap();
        assert_eq!(f.sample_rate, 16000);
        assert_eq!(f.hop_length(), 160);
        assert_eq!(
            b.sequence.unwrap().state,
            vec![["h0".to_string(), "hn".to_string()]]
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert_keys(
            GOOD,
            &[
                ("n_fft = 512", "n_ff = 512", "features.n_ff"),
                ("n_mels = 40", "n_mels = \"x\"", "features.n_mels"),
                (
                    "win_length = 400",
                    "win_length = 4000",
                    "features.win_length",
                ),
                ("m.onnx", "missing.onnx", "sequence.onnx"),
                ("threshold = 0.6", "threshold = 1.6", "decision.threshold"),
                ("{ a = 0.7 }", "{ c = 0.7 }", "decision.thresholds.c"),
                ("kind = \"audio\"", "kind = \"smell\"", "kind"),
            ],
        );
        assert_eq!(key_of("name = "), "(syntax)");
    }

    const VIDEO: &str = r#"
name = "v"
kind = "video"
labels = ["a", "b"]
[video]
width = 224
height = 224
mean = [127.0, 127.0, 127.0]
std = [128.0, 128.0, 128.0]
fps = 15.0
[embedder]
onnx = "m.onnx"
batch = 4
[sequence]
onnx = "m.onnx"
"#;

    #[test]
    fn video_manifest_and_its_errors() {
        let b = parse(VIDEO).unwrap();
        assert_eq!(b.video.as_ref().unwrap().tensor_len(), 3 * 224 * 224);
        let e = b.embedder.as_ref().unwrap();
        assert_eq!((e.window, e.step, e.batch), (1, 1, 4));
        assert!(e.onnx.is_absolute() || e.onnx.starts_with(&b.dir));
        assert_keys(
            VIDEO,
            &[
                ("width = 224", "width = 0", "video.width"),
                ("fps = 15.0", "fps = \"fast\"", "video.fps"),
                ("fps = 15.0", "fsp = 15.0", "video.fsp"),
                ("batch = 4", "batch = 0", "embedder.batch"),
                ("batch = 4", "window = 5000", "embedder.window"),
                (
                    "[embedder]\nonnx = \"m.onnx\"",
                    "[embedder]\nonnx = \"x.onnx\"",
                    "embedder.onnx",
                ),
            ],
        );
        // A video bundle needs [video] and [embedder].
        let no_video = VIDEO.replace("[video]", "[unused]");
        assert!(matches!(parse(&no_video), Err(Error::Bundle { .. })));
        let cut = VIDEO.find("[embedder]").unwrap();
        let no_embedder = format!("{}{}", &VIDEO[..cut], "[sequence]\nonnx = \"m.onnx\"\n");
        assert_eq!(key_of(&no_embedder), "embedder");
    }

    #[test]
    fn pose_section_and_its_errors() {
        let pose = format!("{VIDEO}[pose]\n");
        assert_eq!(
            parse(&pose).unwrap().pose,
            Some(PoseSection { track: true })
        );
        let off = format!("{VIDEO}[pose]\ntrack = false\n");
        assert_eq!(
            parse(&off).unwrap().pose,
            Some(PoseSection { track: false })
        );
        assert_eq!(parse(VIDEO).unwrap().pose, None);
        assert_eq!(
            key_of(&format!("{VIDEO}[pose]\ntrak = true\n")),
            "pose.trak"
        );
        // one frame per step
        let windowed = pose.replace("batch = 4", "batch = 4\nwindow = 2");
        assert_eq!(key_of(&windowed), "embedder.window");
        // not for audio
        let audio = format!("{GOOD}[pose]\n");
        assert_eq!(key_of(&audio), "pose");
    }
}
