//! Line-oriented results: JSON Lines and CSV.
//!
//! The JSONL schema is stable (scripts parse it):
//!
//! * event: `{"file": str, "label": str, "start_s": f64, "end_s": f64, "score": f32}`
//! * posterior: `{"file": str, "t_s": f64, "scores": [f32, ...]}`, scores in the
//!   bundle's label order;
//! * error: `{"file": str, "error": str}`.
//!
//! CSV has one header line; events: `file,label,start_s,end_s,score,error`;
//! posteriors: `file,t_s,<label>...,error`. An error row fills `file` and
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
                Emit::Posteriors => {
                    let labels: Vec<String> = self.labels.iter().map(|l| csv_field(l)).collect();
                    writeln!(self.w, "file,t_s,{},error", labels.join(","))?
                }
            }
        }
        Ok(())
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
