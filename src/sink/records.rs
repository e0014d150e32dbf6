//! Line-oriented results: JSON Lines and CSV.
//!
//! The JSONL schema is stable (scripts parse it):
//!
//! * event: `{"file": str, "label": str, "start_s": f64, "end_s": f64, "score": f32}`
//! * posterior: `{"file": str, "t_s": f64, "scores": [f32, ...]}`, scores in the
//!   bundle's label order;
//! * summary (one per file): `{"file": str, "label": str, "score": f32,
//!   "scores": {"<label>": f32, ...}}`: `scores` the mean posterior of each
//!   label over the file's steps, `label` the one with the highest mean among
//!   the labels the decision does not ignore, `score` its mean (a file with
//!   no steps has `label: null`, `score: null`);
//! * error: `{"file": str, "error": str}`.
//!
//! CSV has one header line; events: `file,label,start_s,end_s,score,error`;
//! posteriors: `file,t_s,<label>...,error`; summary: `file,label,score,<label>...,error`. An error row fills `file` and
//! `error` and leaves the rest empty. Times are rounded to 0.1 ms.

use std::io::{self, Write};

use serde::Serialize;

use crate::decision::Event;

/// Output syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// What to write per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Label events.
    Events,
    /// Per-frame scores with timestamps.
    Posteriors,
    /// One record per file: the label with the highest mean posterior.
    Summary,
}

impl Emit {
    /// The name `--emit` and the protocols use: `events`, `posteriors`, `summary`.
    pub fn name(self) -> &'static str {
        match self {
            Emit::Events => "events",
            Emit::Posteriors => "posteriors",
            Emit::Summary => "summary",
        }
    }

    /// The `Emit` of [`Emit::name`].
    pub fn parse(s: &str) -> Option<Emit> {
        [Emit::Events, Emit::Posteriors, Emit::Summary]
            .into_iter()
            .find(|e| e.name() == s)
    }
}

/// One error record as a JSON Lines line (with its newline), for the callers
/// that hand records on one by one (the server, the cluster).
pub fn error_line(file: &str, error: &str) -> String {
    let mut s = serde_json::to_string(&ErrorLine { file, error }).unwrap_or_default();
    s.push('\n');
    s
}

/// Mean posterior per label over `posteriors` (`[steps * n]`), in f64.
fn mean_posteriors(posteriors: &[f32], n: usize) -> Vec<f64> {
    let mut sum = vec![0f64; n];
    let mut steps = 0usize;
    for row in posteriors.chunks_exact(n.max(1)) {
        for (s, &p) in sum.iter_mut().zip(row) {
            *s += p as f64;
        }
        steps += 1;
    }
    if steps > 0 {
        for s in &mut sum {
            *s /= steps as f64;
        }
    }
    sum
}

/// The summary of a file: the best label (not in `ignore`) by mean
/// posterior, its mean, and all means; `None` for a file with no steps or
/// with every label ignored.
pub fn summarize(posteriors: &[f32], n: usize, ignore: &[bool]) -> (Option<usize>, Vec<f64>) {
    let means = mean_posteriors(posteriors, n);
    if posteriors.len() < n || n == 0 {
        return (None, means);
    }
    let best = (0..n)
        .filter(|&j| !ignore.get(j).copied().unwrap_or(false))
        .fold(None, |b: Option<usize>, j| match b {
            Some(k) if means[k] >= means[j] => Some(k),
            _ => Some(j),
        });
    (best, means)
}

#[derive(Serialize)]
struct EventLine<'a> {
    file: &'a str,
    label: &'a str,
    start_s: f64,
    end_s: f64,
    score: f32,
}

#[derive(Serialize)]
struct PosteriorLine<'a> {
    file: &'a str,
    t_s: f64,
    scores: &'a [f32],
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    file: &'a str,
    label: Option<&'a str>,
    score: Option<f32>,
    scores: LabelMeans<'a>,
}

/// `{"<label>": mean, ...}` in the bundle's label order.
struct LabelMeans<'a>(&'a [String], &'a [f64]);

impl Serialize for LabelMeans<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (l, &v) in self.0.iter().zip(self.1) {
            m.serialize_entry(l, &(v as f32))?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    error: &'a str,
}

fn round_time(t: f64) -> f64 {
    (t * 1e4).round() / 1e4
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes records for a sequence of files.
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    w: W,
    format: Format,
    emit: Emit,
    labels: Vec<String>,
    header_done: bool,
}

impl<W: Write> RecordWriter<W> {
    /// A writer for `labels` (the bundle's, in score order).
    pub fn new(w: W, format: Format, emit: Emit, labels: Vec<String>) -> Self {
        RecordWriter {
            w,
            format,
            emit,
            labels,
            header_done: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if self.format == Format::Csv && !self.header_done {
            self.header_done = true;
            match self.emit {
                Emit::Events => writeln!(self.w, "file,label,start_s,end_s,score,error")?,
                Emit::Posteriors | Emit::Summary => {
                    let labels: Vec<String> = self.labels.iter().map(|l| csv_field(l)).collect();
                    let lead = if self.emit == Emit::Summary {
                        "file,label,score"
                    } else {
                        "file,t_s"
                    };
                    writeln!(self.w, "{lead},{},error", labels.join(","))?
                }
            }
        }
        Ok(())
    }

    /// The records of one finished input, as the writer's `emit` asks:
    /// its events, its posteriors, or its summary (`ignore`: the labels a
    /// summary may not pick, [`crate::decision::DecisionConfig::ignore`]).
    ///
    /// # Errors
    /// Write errors.
    pub fn result(
        &mut self,
        file: &str,
        r: &crate::pipeline::SourceResult,
        ignore: &[bool],
    ) -> io::Result<()> {
        match self.emit {
            Emit::Events => self.events(file, &r.output.events),
            Emit::Posteriors => self.posteriors(
                file,
                &r.output.posteriors,
                r.time_offset_s,
                r.frame_period_s,
            ),
            Emit::Summary => self.summary(file, &r.output.posteriors, ignore),
        }
    }

    /// Events of one file.
    ///
    /// # Errors
    /// Write errors.
    pub fn events(&mut self, file: &str, events: &[Event]) -> io::Result<()> {
        self.header()?;
        for e in events {
            match self.format {
                Format::Jsonl => {
                    serde_json::to_writer(
                        &mut self.w,
                        &EventLine {
                            file,
                            label: &e.label,
                            start_s: round_time(e.start_s),
                            end_s: round_time(e.end_s),
                            score: e.score,
                        },
                    )?;
                    writeln!(self.w)?;
                }
                Format::Csv => writeln!(
                    self.w,
                    "{},{},{},{},{},",
                    csv_field(file),
                    csv_field(&e.label),
                    round_time(e.start_s),
                    round_time(e.end_s),
                    e.score
                )?,
            }
        }
        Ok(())
    }

    /// Per-frame posteriors of one file: frame `i` is at `t0 + i * period`.
    ///
    /// # Errors
    /// Write errors.
    pub fn posteriors(
        &mut self,
        file: &str,
        posteriors: &[f32],
        t0: f64,
        period: f64,
    ) -> io::Result<()> {
        self.header()?;
        let n = self.labels.len().max(1);
        for (i, scores) in posteriors.chunks_exact(n).enumerate() {
            let t_s = round_time(t0 + i as f64 * period);
            match self.format {
                Format::Jsonl => {
                    serde_json::to_writer(&mut self.w, &PosteriorLine { file, t_s, scores })?;
                    writeln!(self.w)?;
                }
                Format::Csv => {
                    write!(self.w, "{},{t_s}", csv_field(file))?;
                    for s in scores {
                        write!(self.w, ",{s}")?;
                    }
                    writeln!(self.w, ",")?;
                }
            }
        }
        Ok(())
    }

    /// The summary record of one file (see the module docs); `ignore` is
    /// the decision's per-label ignore mask.
    ///
    /// # Errors
    /// Write errors.
    pub fn summary(&mut self, file: &str, posteriors: &[f32], ignore: &[bool]) -> io::Result<()> {
        self.header()?;
        let n = self.labels.len();
        let (best, means) = summarize(posteriors, n, ignore);
        let label = best.map(|j| self.labels[j].as_str());
        let score = best.map(|j| means[j] as f32);
        match self.format {
            Format::Jsonl => {
                let line = SummaryLine {
                    file,
                    label,
                    score,
                    scores: LabelMeans(&self.labels, &means),
                };
                serde_json::to_writer(&mut self.w, &line)?;
                writeln!(self.w)
            }
            Format::Csv => {
                write!(
                    self.w,
                    "{},{},{}",
                    csv_field(file),
                    label.map(csv_field).unwrap_or_default(),
                    score.map(|s| s.to_string()).unwrap_or_default()
                )?;
                for m in &means {
                    write!(self.w, ",{}", *m as f32)?;
                }
                writeln!(self.w, ",")
            }
        }
    }

    /// An error record for a file that could not be processed.
    ///
    /// # Errors
    /// Write errors.
    pub fn error(&mut self, file: &str, error: &str) -> io::Result<()> {
        self.header()?;
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.w, &ErrorLine { file, error })?;
                writeln!(self.w)
            }
            Format::Csv => {
                let empty = match self.emit {
                    Emit::Events => 3,
                    Emit::Posteriors => self.labels.len(),
                    Emit::Summary => self.labels.len() + 1,
                };
                writeln!(
                    self.w,
                    "{},{}{}",
                    csv_field(file),
                    ",".repeat(empty + 1),
                    csv_field(error)
                )
            }
        }
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// Flush errors.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Runs one input file through `rec` as `seqrec batch` does and returns
/// (succeeded, its JSON Lines): the records `emit` asks for, or one error
/// record. `path` is where the file is, `name` what the records call it (the
/// server and the cluster workers run copies in temporary files: the path in
/// an error message is replaced by `name`, so the record reads as `seqrec
/// batch`'s would). `threads`: ONNX Runtime threads of the embedder.
pub fn file_records(
    rec: &crate::pipeline::Recognizer,
    path: &std::path::Path,
    name: &str,
    emit: Emit,
    threads: usize,
    folder_fps: Option<f64>,
) -> (bool, String) {
    let mut w = RecordWriter::new(Vec::new(), Format::Jsonl, emit, rec.labels().to_vec());
    let keep = emit != Emit::Events;
    let res = rec
        .stream_with_threads(threads.max(1))
        .and_then(|mut proc| {
            crate::pipeline::process_path(rec, &mut proc, path, folder_fps, false, keep)
        });
    let ok = res.is_ok();
    let _ = match res {
        Ok(r) => w.result(name, &r, &rec.decision().ignore),
        Err(e) => w.error(
            name,
            &e.to_string().replace(&path.display().to_string(), name),
        ),
    };
    let bytes = w.into_inner().unwrap_or_default();
    (ok, String::from_utf8_lossy(&bytes).into_owned())
}
