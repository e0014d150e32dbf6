//! Throughput of `seqrec submit` with 1, 2, 3 workers against `seqrec batch`
//! on the same files, and the takeover time of a live stream whose owner is
//! killed. Run by `scripts/bench_cluster.sh` (which builds the release binary).
//!
//! ```sh
//! cargo run --release --example cluster_bench -- target/release/seqrec [FILES] [KILLS]
//! ```
//!
//! Everything runs on this machine: a 3-node nats-server cluster (replicas
//! 3), the workers, the submitter and the producer share its cores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use seqrec::cluster::{Cluster, ClusterOptions, Producer};

/// Lease time of every worker here, seconds.
const LEASE: f64 = 2.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Worker {
    child: Child,
    name: String,
    /// Lines with the wall-clock time they were read.
    log: Arc<Mutex<Vec<(SystemTime, String)>>>,
}

impl Worker {
    fn start(bin: &Path, urls: &str, name: &str, lease: f64) -> Worker {
        let mut child = Command::new(bin)
            .args([
                "worker", "--nats", urls, "--name", name, "-v", "--jobs", "1",
            ])
            .args(["--bundle", "kws=models/kws", "--lease", &lease.to_string()])
            .args(["--checkpoint-every", "50"])
            .current_dir(root())
            .stderr(Stdio::piped())
            .spawn()
            .expect("seqrec worker");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l, err) = (Arc::clone(&log), child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock().unwrap().push((SystemTime::now(), line));
            }
        });
        Worker {
            child,
            name: name.into(),
            log,
        }
    }
    fn find(&self, s: &str) -> Option<SystemTime> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains(s))
            .map(|(t, _)| *t)
    }
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn wait_ready(ws: &[Worker]) {
    let t0 = Instant::now();
    while !ws.iter().all(|w| w.find(": ready:").is_some()) {
        assert!(t0.elapsed() < Duration::from_secs(60), "workers not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(args.get(1).map_or("target/release/seqrec", String::as_str));
    let n_files: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(48);
    let kills: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(root().join("scripts/nats-cluster.sh"))
        .arg("start")
        .arg(dir.path().join("nats"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let env = std::fs::read_to_string(dir.path().join("nats/env")).unwrap();
    let urls = env
        .lines()
        .find_map(|l| l.strip_prefix("NATS_URLS="))
        .unwrap()
        .to_string();

    // Inputs: the kws fixture clips, copied to n_files names (2.7-3.8 s each).
    let src = root().join("fixtures/clips/kws");
    let clips: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    let files: Vec<PathBuf> = (0..n_files)
        .map(|i| {
            let p = dir.path().join(format!("{i:03}.wav"));
            std::fs::copy(&clips[i % clips.len()], &p).unwrap();
            p
        })
        .collect();
    let run = |cmd: &mut Command| {
        let t0 = Instant::now();
        let out = cmd.current_dir(root()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (t0.elapsed().as_secs_f64(), out.stdout)
    };
    println!(
        "# {n_files} files of models/kws (speech_embedding CNN + GRU), 2 cores shared by everything"
    );
    let (t_batch, want) = run(Command::new(&bin)
        .args(["batch", "--bundle", "models/kws", "--jobs", "2"])
        .args(&files));
    println!(
        "seqrec batch --jobs 2: {t_batch:.2} s, {:.1} files/s",
        n_files as f64 / t_batch
    );
    for n in 1..=3 {
        let ws: Vec<Worker> = (1..=n)
            .map(|i| Worker::start(&bin, &urls, &format!("t{n}-{i}"), LEASE))
            .collect();
        wait_ready(&ws);
        let mut times = Vec::new();
        for _ in 0..3 {
            let (t, got) = run(Command::new(&bin)
                .args(["submit", "--nats", &urls, "--bundle", "kws"])
                .args(&files));
            assert!(got == want, "submit's output differs from batch's");
            times.push(t);
        }
        let t = median(times);
        println!(
            "{n} worker(s), --jobs 1 each: {t:.2} s (median of 3), {:.1} files/s, {:.2}x batch --jobs 2; output = batch's",
            n_files as f64 / t,
            t_batch / t
        );
        for w in ws {
            w.stop();
        }
    }

    // Takeover: a real-time stream, its owner killed 3 s in.
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The lease bucket keeps the first worker's lease time: read it.
    let lease = rt.block_on(async {
        let c = async_nats::connect(urls.split(',').next().unwrap())
            .await
            .unwrap();
        let kv = async_nats::jetstream::new(c)
            .get_key_value("seqrec-leases")
            .await
            .unwrap();
        kv.status().await.unwrap().max_age().as_secs_f64()
    });
    let mut after_expiry = Vec::new();
    let mut after_kill = Vec::new();
    let mut caught_up = Vec::new();
    let x = {
        use seqrec::source::AudioSource;
        let mut all = Vec::new();
        let mut f = seqrec::source::AudioFile::open(&clips[0], 16000).unwrap();
        while f.read(&mut all).unwrap() > 0 {}
        all
    };
    for k in 0..kills {
        let mut ws: Vec<Worker> = (1..=3)
            .map(|i| Worker::start(&bin, &urls, &format!("k{k}-{i}"), LEASE))
            .collect();
        wait_ready(&ws);
        let id = format!("take{k}");
        let r = rt.block_on(async {
            let cl = Cluster::connect(&ClusterOptions::new(std::slice::from_ref(&urls), "bench"))
                .await
                .unwrap();
            let mut prod = Producer::open(&cl, &id, "kws", 16000).await.unwrap();
            let js = async_nats::jetstream::new(cl.client().clone());
            let leases = js.get_key_value("seqrec-leases").await.unwrap();
            let mut outs = prod.outputs().await.unwrap();
            let mut killed = None;
            // 8 s of audio at real time (the clip looped), 100 ms chunks
            for c in 0..80 {
                let off = (c * 1600) % (x.len() - 1600);
                prod.send(&x[off..off + 1600]).await.unwrap();
                if c == 30 {
                    let i = ws
                        .iter()
                        .position(|w| w.find(&format!("took stream {id}")).is_some())
                        .expect("an owner");
                    let w = &mut ws[i];
                    w.child.kill().unwrap();
                    let t_kill = SystemTime::now();
                    let _ = w.child.wait();
                    // the dead owner's last renewal (the lease entry is
                    // still there until it expires)
                    let e = leases.entry(id.as_str()).await.unwrap().expect("the lease");
                    let renewed = SystemTime::UNIX_EPOCH
                        + Duration::from_secs_f64(e.created.unix_timestamp_nanos() as f64 / 1e9);
                    killed = Some((w.name.clone(), t_kill, renewed));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            prod.end().await.unwrap();
            while let Some(o) = outs.next().await {
                if o.unwrap().kind == "done" {
                    break;
                }
            }
            killed
        });
        let (dead, t_kill, renewed) = r.expect("killed");
        let heir = ws
            .iter()
            .filter(|w| w.name != dead)
            .find_map(|w| w.find(&format!("took stream {id}")))
            .expect("an heir");
        let caught = ws
            .iter()
            .filter(|w| w.name != dead)
            .find_map(|w| w.find(&format!("caught up with stream {id}")))
            .expect("an heir that caught up");
        let expiry = renewed + Duration::from_secs_f64(lease);
        let a = heir.duration_since(t_kill).unwrap().as_secs_f64();
        let b = heir
            .duration_since(expiry)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64());
        let c = caught
            .duration_since(expiry)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64());
        println!(
            "takeover {k}: heir took the stream {a:.3} s after the kill, {b:.3} s after the lease expired; caught up with the producer {c:.3} s after it expired"
        );
        after_kill.push(a);
        after_expiry.push(b);
        caught_up.push(c);
        for w in ws {
            w.stop();
        }
    }
    if kills > 0 {
        println!(
            "takeover (lease {lease} s, {kills} kills): taken a median {:.3} s after the kill, {:.3} s after expiry (max {:.3} s); caught up {:.3} s after expiry (max {:.3} s)",
            median(after_kill),
            median(after_expiry.clone()),
            after_expiry.iter().copied().fold(f64::MIN, f64::max),
            median(caught_up.clone()),
            caught_up.iter().copied().fold(f64::MIN, f64::max)
        );
    }
    let _ = Command::new(root().join("scripts/nats-cluster.sh"))
        .arg("stop")
        .arg(dir.path().join("nats"))
        .status();
}
