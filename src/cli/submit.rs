//! `seqrec submit`: runs files on a cluster's workers; writes what `seqrec batch` writes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use seqrec::cluster::{Cluster, SubmitOptions, SubmitProgress};
use seqrec::sink::records::Emit;

use super::common::ResultsOut;
use super::worker::NatsFlags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Inputs, as for `seqrec batch`: files, or directories (recursed).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    nats: NatsFlags,
    /// The bundle's name, as the workers were started with (`--bundle NAME=DIR`).
    #[arg(long)]
    bundle: String,
    /// Write results here (JSON Lines, atomically). Default: standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write label events, posteriors or one summary per file (as `seqrec batch --emit`).
    #[arg(long, value_enum, default_value = "events")]
    emit: Emit,
    /// Do not upload the files: put their absolute paths in the jobs (every worker must
    /// see them at the same paths, e.g. on a shared file system). Needed for image folders.
    #[arg(long)]
    shared_path: bool,
    /// Frame rate of image-folder inputs (video bundles), frames per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Give up when no result has come for this many seconds.
    #[arg(long, default_value_t = 600.0)]
    stall_timeout: f64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if !(a.stall_timeout.is_finite() && a.stall_timeout > 0.0) {
        anyhow::bail!("--stall-timeout must be a positive number of seconds");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let name = format!("seqrec-submit-{}", std::process::id());
        let cl = Cluster::connect(&a.nats.options(&name)).await?;
        let info = cl.bundle_info(&a.bundle).await?.with_context(|| {
            format!(
                "no worker offers bundle `{}` in namespace `{}` (start one: seqrec worker --nats URL --bundle {}=DIR)",
                a.bundle, a.nats.namespace, a.bundle
            )
        })?;
        let files = if info.kind == "video" {
            seqrec::pipeline::expand_video_inputs(&a.inputs)?
        } else {
            seqrec::pipeline::expand_inputs(&a.inputs, seqrec::pipeline::AUDIO_EXTENSIONS)?
        };
        if files.is_empty() {
            anyhow::bail!("no {} inputs found in {:?}", info.kind, a.inputs);
        }
        let (mut w, out) = ResultsOut::open(a.out.as_deref())?;
        let progress = std::io::stderr().is_terminal().then(|| {
            let pb = indicatif::ProgressBar::new(files.len() as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} files done, {msg}, {elapsed} elapsed, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        });
        let o = SubmitOptions {
            bundle: a.bundle.clone(),
            emit: a.emit,
            shared_path: a.shared_path,
            folder_fps: Some(a.fps),
            stall_timeout: Duration::from_secs_f64(a.stall_timeout),
        };
        let t0 = Instant::now();
        let (mut failed, mut first_err) = (0usize, None);
        let n = files.len();
        let r = seqrec::cluster::submit(
            &cl,
            &o,
            &files,
            |_, lines, ok| {
                if !ok {
                    failed += 1;
                    if progress.is_none() {
                        eprint!("error: {lines}");
                    }
                }
                if let (Err(e), None) = (w.write_all(lines.as_bytes()), &first_err) {
                    first_err = Some(e);
                }
                if let Some(pb) = &progress {
                    pb.inc(1);
                }
            },
            |p| match p {
                SubmitProgress::Queued(k) => {
                    if let Some(pb) = &progress {
                        pb.set_message(format!("{k}/{n} queued"));
                    }
                }
                SubmitProgress::NoWorkers(t) => {
                    let msg = format!(
                        "no result for {:.0} s and no worker of `{}` is asking for jobs: are they running?",
                        t.as_secs_f64(),
                        a.bundle
                    );
                    match &progress {
                        Some(pb) => pb.println(format!("warning: {msg}")),
                        None => eprintln!("warning: {msg}"),
                    }
                }
            },
        )
        .await;
        if let Some(pb) = &progress {
            pb.finish_and_clear();
        }
        if let Err(e) = r {
            out.finish(Err(std::io::Error::other("incomplete")), None).ok();
            return Err(e.into());
        }
        out.finish(Ok(w), first_err)?;
        eprintln!(
            "{n} file(s) on the cluster in {:.2} s{}",
            t0.elapsed().as_secs_f64(),
            if failed > 0 { format!(", {failed} failed") } else { String::new() }
        );
        anyhow::Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}
