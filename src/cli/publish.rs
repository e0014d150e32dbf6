//! `seqrec live --publish`: the microphone's audio as a live stream on a NATS
//! JetStream cluster, recognized by `seqrec worker`s; their events printed here.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use seqrec::cluster::{Cluster, Producer};
use seqrec::source::mic::{MicOptions, Microphone};

use super::worker::NatsFlags;

/// What to publish where.
pub struct Publish<'a> {
    pub nats: NatsFlags,
    /// The stream's id.
    pub stream: String,
    /// The bundle's name on the cluster.
    pub bundle: String,
    pub sample_rate: u32,
    pub device: Option<&'a str>,
    pub duration: Option<f64>,
    pub jsonl: bool,
}

/// Captures, publishes in 100 ms chunks, prints the cluster's events; at the
/// end (duration or Ctrl-C) ends the stream and waits for its last events.
pub fn run(p: Publish) -> anyhow::Result<ExitCode> {
    let mut mic = Microphone::open(&MicOptions {
        device: p.device.map(str::to_string),
        target_rate: p.sample_rate,
        ..MicOptions::default()
    })?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let s = std::sync::Arc::clone(&stop);
        let _ = ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::SeqCst));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let chunk = (p.sample_rate / 10).max(1) as usize;
    let deadline = p
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    eprintln!(
        "listening on {} ({} Hz); publishing it as stream `{}` of bundle `{}`{}",
        mic.device_name(),
        mic.native_rate(),
        p.stream,
        p.bundle,
        if p.duration.is_some() {
            ""
        } else {
            "; Ctrl-C to stop"
        }
    );
    // Capture on this thread: the audio callback only fills the capture
    // queue; chunks go to the async side through a bounded channel.
    std::thread::scope(|scope| -> anyhow::Result<ExitCode> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<f32>>(64);
        let stop2 = std::sync::Arc::clone(&stop);
        let reader = scope.spawn(move || -> anyhow::Result<()> {
            let (mut buf, mut pending) = (Vec::with_capacity(8192), Vec::with_capacity(2 * chunk));
            while !stop2.load(std::sync::atomic::Ordering::SeqCst)
                && deadline.is_none_or(|d| Instant::now() < d)
            {
                buf.clear();
                mic.read(&mut buf, Duration::from_millis(100))?;
                pending.extend_from_slice(&buf);
                while pending.len() >= chunk {
                    let c: Vec<f32> = pending.drain(..chunk).collect();
                    if tx.blocking_send(c).is_err() {
                        return Ok(());
                    }
                }
            }
            if !pending.is_empty() {
                let _ = tx.blocking_send(pending);
            }
            Ok(())
        });
        let r = rt.block_on(async {
            let name = format!("seqrec-live-{}", std::process::id());
            let cl = Cluster::connect(&p.nats.options(&name)).await?;
            let mut prod = Producer::open(&cl, &p.stream, &p.bundle, p.sample_rate).await?;
            let mut outs = prod.outputs().await?;
            let mut done = false;
            let mut sending = true;
            let mut failed = false;
            while !done {
                tokio::select! {
                    c = rx.recv(), if sending => match c {
                        Some(c) => prod.send(&c).await?,
                        None => { prod.end().await?; sending = false; }
                    },
                    o = outs.next() => match o {
                        Some(Ok(o)) => {
                            done = o.kind == "done";
                            failed |= o.kind == "error";
                            print_output(&o, p.jsonl);
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => break,
                    },
                }
            }
            anyhow::Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The capture thread may wait on a full channel: closing it frees it.
        drop(rx);
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the capture thread panicked"))??;
        r
    })
}

fn print_output(o: &seqrec::cluster::Output, jsonl: bool) {
    if jsonl {
        println!("{}", o.record);
        return;
    }
    let v: serde_json::Value = serde_json::from_str(&o.record).unwrap_or_default();
    match o.kind.as_str() {
        "event" => println!(
            "{:9.2} s - {:9.2} s  {:<16} {:.2}",
            v["start_s"].as_f64().unwrap_or(0.0),
            v["end_s"].as_f64().unwrap_or(0.0),
            v["label"].as_str().unwrap_or("?"),
            v["score"].as_f64().unwrap_or(0.0)
        ),
        "error" => eprintln!(
            "error from the cluster: {}",
            v["error"].as_str().unwrap_or("?")
        ),
        _ => eprintln!(
            "stream ended: {} samples recognized",
            v["samples"].as_u64().unwrap_or(0)
        ),
    }
}
