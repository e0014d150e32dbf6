//! `seqrec enroll`: a bundle that spots your own word, from 3-5 recordings
//! of it (see `seqrec::enroll` for how the templates and the threshold are
//! made).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use seqrec::bundle::Bundle;
use seqrec::pipeline::Recognizer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle whose front end and embedder the new one uses (e.g. models/kws).
    #[arg(long)]
    bundle: PathBuf,
    /// The word's label in events.
    #[arg(long)]
    keyword: String,
    /// Directory to write the new bundle into (created; must be empty or absent, unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Keyword-free embedding steps to set the threshold against [default: the bundle's
    /// negatives.npy].
    #[arg(long, value_name = "FILE.npy")]
    negatives: Option<PathBuf>,
    /// Replace what is in --out.
    #[arg(long)]
    force: bool,
    /// Enroll the recordings only, not also their variants (shifted by 27 and 53 ms, 0.88x
    /// and 1.12x speed, pink noise at 20 and 10 dB SNR).
    #[arg(long)]
    no_augment: bool,
    /// Recordings of the word, alone, with a little silence around it (any audio file
    /// seqrec reads; 3-5 of them).
    #[arg(required = true, value_name = "REC")]
    recordings: Vec<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let kw = a.keyword.trim();
    if kw.is_empty() || kw.starts_with('_') || kw.chars().any(char::is_control) {
        anyhow::bail!(
            "--keyword `{}`: give a plain word (not empty, not starting with `_`, which marks seqrec's own labels)",
            a.keyword
        );
    }
    let bundle = Bundle::load(&a.bundle)?;
    let Some(embedder) = bundle.embedder.clone() else {
        anyhow::bail!(
            "{}: the bundle has no [embedder]; enroll needs one that turns speech into vectors (models/kws)",
            a.bundle.display()
        );
    };
    if a.out.exists() && !a.force && std::fs::read_dir(&a.out)?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not empty: choose another --out or add --force",
            a.out.display()
        );
    }
    let rec = Recognizer::new(bundle.clone())?;
    let mut recordings = Vec::with_capacity(a.recordings.len());
    for p in &a.recordings {
        let x = seqrec::source::read_all(p, rec.sample_rate())?;
        recordings.push((p.display().to_string(), x));
    }
    let neg_path = a
        .negatives
        .clone()
        .unwrap_or_else(|| bundle.dir.join("negatives.npy"));
    let dims = rec.embedder().map_or(0, |e| e.output_size());
    let negatives = if neg_path.is_file() {
        Some(seqrec::enroll::read_negatives(&neg_path, dims)?)
    } else if a.negatives.is_some() {
        anyhow::bail!("--negatives {}: no such file", neg_path.display());
    } else {
        eprintln!(
            "warning: {} has no negatives.npy: the threshold is set from the recordings alone, with no check against other speech",
            bundle.dir.display()
        );
        None
    };
    let augment = if a.no_augment {
        seqrec::enroll::Augment::none()
    } else {
        seqrec::enroll::Augment::default()
    };
    let e =
        seqrec::enroll::enroll_recordings(&rec, kw, &recordings, &augment, negatives.as_deref())?;

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let onnx_name = embedder
        .onnx
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| "embedder.onnx".into());
    copy(&embedder.onnx, &a.out.join(&onnx_name))?;
    for lic in ["LICENSE", "LICENSE-speech-embedding"] {
        let p = bundle.dir.join(lic);
        if p.is_file() {
            copy(&p, &a.out.join(lic))?;
        }
    }
    let n = e.recordings.len();
    seqrec::npy::write_f32(
        a.out.join("templates.npy"),
        &[e.n_templates, e.steps, e.dims],
        &e.templates,
    )?;
    let mut center = e.center.0.clone();
    center.extend_from_slice(&e.center.1);
    seqrec::npy::write_f32(a.out.join("center.npy"), &[2, e.dims], &center)?;
    let manifest = manifest(&bundle, kw, &onnx_name, &e)?;
    let path = a.out.join(seqrec::bundle::MANIFEST);
    std::fs::write(&path, manifest).with_context(|| format!("writing {}", path.display()))?;
    // the bundle must load as written
    Recognizer::new(Bundle::load(&a.out)?).context("the enrolled bundle does not load")?;
    let report = serde_json::json!({
        "keyword": kw,
        "from_bundle": bundle.dir,
        "steps": e.steps,
        "scale": e.scale,
        "left_out_hits": e.left_out_hits,
        "recordings": e.recordings.iter().map(|r| serde_json::json!({
            "file": r.name, "word_s": r.word_s, "left_out_distance": r.left_out,
        })).collect::<Vec<_>>(),
        "negatives": e.negatives.map(|(d, s)| serde_json::json!({
            "file": neg_path, "seconds": s, "closest_distance": d,
        })),
    });
    std::fs::write(
        a.out.join("enroll.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;

    eprintln!(
        "enrolled `{kw}` from {n} recordings: {} templates of {} steps ({:.2} s)",
        e.n_templates,
        e.steps,
        e.steps as f64 * rec.frame_period_s()
    );
    for r in &e.recordings {
        let ok = if r.left_out < e.scale {
            "matches"
        } else {
            "does NOT match"
        };
        eprintln!(
            "  {}: word {:.2} s, distance to the others {:.3}: {ok}",
            r.name, r.word_s, r.left_out
        );
    }
    match e.negatives {
        Some((d, s)) => eprintln!(
            "  keyword-free audio ({:.0} s, {}): closest distance {d:.3}",
            s,
            neg_path.display()
        ),
        None => eprintln!("  no keyword-free audio to check against"),
    }
    eprintln!(
        "  threshold: distance {:.3}; {}/{n} recordings left out in turn are found",
        e.scale, e.left_out_hits
    );
    if e.left_out_hits < n {
        eprintln!(
            "warning: some recordings are not found from the others: record the word a few more times, the same way you will say it"
        );
    }
    eprintln!(
        "bundle: {} (try: seqrec live --bundle {})",
        a.out.display(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

/// The new manifest: the source bundle's [audio], [features] and
/// [embedder] (its file copied beside), templates for [sequence], and a
/// decision at the templates' scale (score 0.5).
fn manifest(
    b: &Bundle,
    kw: &str,
    onnx_name: &Path,
    e: &seqrec::enroll::Enrollment,
) -> anyhow::Result<String> {
    let src = b.dir.join(seqrec::bundle::MANIFEST);
    let text =
        std::fs::read_to_string(&src).with_context(|| format!("reading {}", src.display()))?;
    let mut t: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", src.display()))?;
    let v = |s: &str| toml::Value::String(s.into());
    t.insert("name".into(), v(&format!("enrolled-{kw}")));
    t.insert(
        "description".into(),
        v(&format!(
            "`{kw}` spotted by templates from {} recordings (seqrec enroll on {})",
            e.recordings.len(),
            b.name
        )),
    );
    t.insert(
        "labels".into(),
        toml::Value::Array(vec![v("_background_"), v(kw)]),
    );
    if let Some(toml::Value::Table(emb)) = t.get_mut("embedder") {
        emb.insert("onnx".into(), v(&onnx_name.to_string_lossy()));
    }
    let mut seq = toml::Table::new();
    seq.insert("templates".into(), v("templates.npy"));
    seq.insert("template_center".into(), v("center.npy"));
    seq.insert(
        "template_labels".into(),
        toml::Value::Array(vec![toml::Value::Integer(1); e.n_templates]),
    );
    seq.insert(
        "template_scales".into(),
        toml::Value::Array(vec![
            toml::Value::Float(0.0),
            toml::Value::Float(f64::from(e.scale)),
        ]),
    );
    t.insert("sequence".into(), toml::Value::Table(seq));
    let mut d = toml::Table::new();
    d.insert("threshold".into(), toml::Value::Float(0.5));
    d.insert("off_threshold".into(), toml::Value::Float(0.35));
    d.insert("smoothing_s".into(), toml::Value::Float(0.0));
    d.insert("min_duration_s".into(), toml::Value::Float(0.0));
    // one word matches at a few alignments of its window: never twice a second
    d.insert("refractory_s".into(), toml::Value::Float(1.0));
    d.insert("ignore".into(), toml::Value::Array(vec![v("_background_")]));
    t.insert("decision".into(), toml::Value::Table(d));
    Ok(format!(
        "# Made by `seqrec enroll --keyword {kw}` from {} recordings (see enroll.json).\n{}",
        e.recordings.len(),
        toml::to_string(&t)?
    ))
}
