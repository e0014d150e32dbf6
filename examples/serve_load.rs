//! Load generator for `seqrec serve`: N concurrent streams, each paced at
//! real time, on loopback.
//!
//! ```text
//! cargo run --release --example serve_load -- --addr 127.0.0.1:8080 --bundle kws \
//!     --clip fixtures/clips/kws/live_yes_down_right_go.wav --streams 100 --seconds 20 [--server-pid PID]
//! ```
//!
//! Every stream sends its clip (looped) as 16-bit PCM in chunks of
//! `--chunk-ms`, chunk k at `start + k * chunk` (starts spread over the first
//! chunk), with `emit=posteriors`. Latency is measured from the moment the
//! chunk holding a posterior's last sample was sent to the moment the
//! posterior arrived (the server says how many samples it had taken when it
//! sent each posteriors message). A run "keeps up" when the streams' p99
//! latency stays under one chunk period plus 50 ms and every stream ends with
//! `done` (a stream still waiting 10 s after its last chunk gives up) with the
//! same events as every other stream (they all send the same audio). With `--server-pid` it also reads the server's CPU time and
//! resident memory from /proc before and after.
//!
//! Prints one JSON line: streams, chunks, p50/p99/max latency (ms), keeps_up,
//! server CPU cores used, CPU ms per stream-second, RSS per stream (KiB).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

struct Opts {
    addr: String,
    bundle: String,
    clip: String,
    streams: usize,
    seconds: f64,
    chunk_ms: f64,
    server_pid: Option<u32>,
}

fn parse() -> Opts {
    let mut o = Opts {
        addr: "127.0.0.1:8080".into(),
        bundle: "kws".into(),
        clip: "fixtures/clips/kws/live_yes_down_right_go.wav".into(),
        streams: 10,
        seconds: 20.0,
        chunk_ms: 100.0,
        server_pid: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let v = args[i + 1].clone();
        match args[i].as_str() {
            "--addr" => o.addr = v,
            "--bundle" => o.bundle = v,
            "--clip" => o.clip = v,
            "--streams" => o.streams = v.parse().expect("--streams N"),
            "--seconds" => o.seconds = v.parse().expect("--seconds S"),
            "--chunk-ms" => o.chunk_ms = v.parse().expect("--chunk-ms MS"),
            "--server-pid" => o.server_pid = Some(v.parse().expect("--server-pid PID")),
            a => panic!("unknown argument {a}"),
        }
        i += 2;
    }
    o
}

/// (CPU seconds, resident KiB) of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ticks / 100.0, rss))
}

struct StreamResult {
    latencies_ms: Vec<f64>,
    done: bool,
    /// The events, as the server wrote them (every stream sends the same
    /// audio, so every stream must get the same events).
    events: Vec<String>,
}

async fn one_stream(o: Arc<Opts>, pcm: Arc<Vec<u8>>, rate: u32, delay: Duration) -> StreamResult {
    let url = format!(
        "ws://{}/v1/stream?bundle={}&sample_rate={rate}&format=s16le&emit=posteriors",
        o.addr, o.bundle
    );
    let ws = match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            eprintln!("connect: {e}");
            return StreamResult {
                latencies_ms: Vec::new(),
                done: false,
                events: Vec::new(),
            };
        }
    };
    let (mut tx, mut rx) = ws.split();
    let chunk = (rate as f64 * o.chunk_ms / 1000.0) as usize;
    let chunks = (o.seconds * 1000.0 / o.chunk_ms) as usize;
    let sent: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let s2 = Arc::clone(&sent);
    let sender = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let start = tokio::time::Instant::now();
        let total = pcm.len() / 2;
        let mut pos = 0usize;
        for k in 0..chunks {
            tokio::time::sleep_until(
                start + Duration::from_secs_f64(k as f64 * chunk as f64 / rate as f64),
            )
            .await;
            let mut buf = Vec::with_capacity(chunk * 2);
            for _ in 0..chunk {
                buf.extend_from_slice(&pcm[2 * pos..2 * pos + 2]);
                pos = (pos + 1) % total;
            }
            s2.lock().unwrap().push(Instant::now());
            if tx.send(Message::Binary(buf.into())).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Message::Text(r#"{"type":"end"}"#.into())).await;
    });
    let mut lat = Vec::new();
    let mut done = false;
    let mut events = Vec::new();
    // A server that cannot keep up would take minutes to drain: give up
    // 10 s after the last chunk is due (the run does not keep up then).
    let give_up = tokio::time::Instant::now() + delay + Duration::from_secs_f64(o.seconds + 10.0);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(give_up, rx.next()).await {
        if let Message::Text(t) = m {
            let v: serde_json::Value = match serde_json::from_str(&t) {
                Ok(v) => v,
                Err(_) => continue,
            };
            match v["type"].as_str() {
                Some("posteriors") => {
                    let taken = v["samples"].as_u64().unwrap_or(0) as usize;
                    let k = taken.div_ceil(chunk).saturating_sub(1);
                    if let Some(t0) = sent.lock().unwrap().get(k) {
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some("event") => events.push(v.to_string()),
                Some("done") => {
                    done = true;
                    break;
                }
                Some("error") => {
                    eprintln!("error: {}", v["message"]);
                    break;
                }
                _ => {}
            }
        }
    }
    sender.abort();
    StreamResult {
        latencies_ms: lat,
        done,
        events,
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = Arc::new(parse());
    // 16-bit PCM of the clip at the bundle's rate (16 kHz bundles).
    let rate = 16000u32;
    let x = {
        use seqrec::source::AudioSource;
        let mut f = seqrec::source::AudioFile::open(&o.clip, rate).expect("the clip");
        let mut all = Vec::new();
        while f.read(&mut all).expect("decoding the clip") > 0 {}
        all
    };
    let pcm: Vec<u8> = x
        .iter()
        .flat_map(|v| ((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    let pcm = Arc::new(pcm);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let before = o.server_pid.and_then(proc_usage);
    // resident memory while every stream is open
    let mid = {
        let (pid, half) = (o.server_pid, o.seconds / 2.0 + 0.2);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(half));
            pid.and_then(proc_usage).map(|u| u.1)
        })
    };
    let t0 = Instant::now();
    let results: Vec<StreamResult> = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..o.streams {
            let delay = Duration::from_secs_f64(o.chunk_ms / 1000.0 * i as f64 / o.streams as f64);
            tasks.push(tokio::spawn(one_stream(
                Arc::clone(&o),
                Arc::clone(&pcm),
                rate,
                delay,
            )));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let wall = t0.elapsed().as_secs_f64();
    let after = o.server_pid.and_then(proc_usage);
    let mut all: Vec<f64> = results
        .iter()
        .flat_map(|r| r.latencies_ms.iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    let done = results.iter().filter(|r| r.done).count();
    // Nothing lost under load: every finished stream has the events of the
    // first finished one (same audio in, same events out).
    let reference = results.iter().find(|r| r.done).map(|r| &r.events);
    let differing = results
        .iter()
        .filter(|r| r.done && Some(&r.events) != reference)
        .count();
    let events_per_stream = reference.map_or(0, Vec::len);
    let p99 = pct(&all, 0.99);
    let keeps_up = done == o.streams && p99 < o.chunk_ms + 50.0 && differing == 0;
    let cpu = match (before, after) {
        (Some(b), Some(a)) => Some(a.0 - b.0),
        _ => None,
    };
    let rss = mid.join().ok().flatten();
    let stream_s = o.streams as f64 * o.seconds;
    println!(
        "{}",
        serde_json::json!({
            "bundle": o.bundle, "streams": o.streams, "seconds": o.seconds, "chunk_ms": o.chunk_ms,
            "done": done, "posteriors": all.len(),
            "events_per_stream": events_per_stream, "streams_with_other_events": differing,
            "p50_ms": pct(&all, 0.5), "p99_ms": p99, "max_ms": all.last().copied().unwrap_or(f64::NAN),
            "keeps_up": keeps_up,
            "server_cores": cpu.map(|c| c / wall),
            "cpu_ms_per_stream_s": cpu.map(|c| c * 1000.0 / stream_s),
            "server_rss_kib_mid_run": rss,
        })
    );
}
