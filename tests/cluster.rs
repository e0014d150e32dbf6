//! seqrec on a NATS JetStream cluster: `seqrec worker`, `seqrec submit` and
//! live streams, with workers and NATS nodes killed (`kill -9`) mid-run.
//!
//! Each test starts its own 3-node cluster on loopback ports with
//! `scripts/nats-cluster.sh` (so that killing a node in one test cannot touch
//! another) and real `seqrec worker` processes. Without Debian's
//! `nats-server` the tests are skipped, unless SEQREC_REQUIRE_NATS=1 (set by
//! scripts/test.sh, which installs it) makes that a failure.

mod common;

use common::nats::{Nats, Worker};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use seqrec::cluster::{Cluster, Producer};

fn workers(nats: &Nats, n: usize) -> Vec<Worker> {
    let ws: Vec<Worker> = (1..=n)
        .map(|i| Worker::start(nats, &format!("w{i}"), "kws-logmel=models/kws-logmel", &[]))
        .collect();
    wait_until(Duration::from_secs(60), "the workers to start", || {
        ws.iter()
            .all(|w| w.log().contains(": ready: bundles kws-logmel"))
    });
    ws
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test at a time: each runs a 3-node cluster and 3 workers, and their
/// leases and ack waits are seconds long; four such at once on 2 cores
/// would test the machine, not seqrec.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// `k` copies of the three kws-logmel clips (distinct names) in `dir`.
fn batch_inputs(dir: &Path, k: usize) -> Vec<PathBuf> {
    let src = common::root().join("fixtures/clips/kws-logmel");
    let mut v = Vec::new();
    for i in 0..k {
        for c in [
            "espeak_go_now_left.wav",
            "espeak_yes_stock_stop.wav",
            "slt_dot_down_off.wav",
        ] {
            let p = dir.join(format!("{i:02}_{c}"));
            std::fs::copy(src.join(c), &p).unwrap();
            v.push(p);
        }
    }
    v
}

fn batch_output(files: &[PathBuf]) -> String {
    let out = common::seqrec_ok(
        ["batch", "--bundle", "models/kws-logmel", "--jobs", "2"]
            .iter()
            .map(|s| s.to_string())
            .chain(files.iter().map(|f| f.to_string_lossy().into_owned())),
    );
    String::from_utf8(out.stdout).unwrap()
}

fn submit(nats: &Nats, files: &[PathBuf]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_seqrec"))
        .args(["submit", "--nats", &nats.urls, "--bundle", "kws-logmel"])
        .args(["--stall-timeout", "60"])
        .args(files)
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn deliveries_after_the_first(ws: &[Worker]) -> usize {
    ws.iter()
        .map(|w| {
            w.log()
                .lines()
                .filter(|l| {
                    (l.contains(" did ") || l.contains(" was done already"))
                        && !l.contains("(delivery 1)")
                })
                .count()
        })
        .sum()
}

/// The audio of the live tests: the three clips twice, 15.7 s.
fn live_audio() -> Vec<f32> {
    use seqrec::source::AudioSource;
    let mut all = Vec::new();
    for _ in 0..2 {
        for c in [
            "espeak_go_now_left.wav",
            "espeak_yes_stock_stop.wav",
            "slt_dot_down_off.wav",
        ] {
            let path = common::root().join("fixtures/clips/kws-logmel").join(c);
            let mut f = seqrec::source::AudioFile::open(path, 16000).unwrap();
            while f.read(&mut all).unwrap() > 0 {}
        }
    }
    all
}

/// What one uninterrupted stream makes of `x` in 100 ms chunks: the records
/// a stream's owner publishes for its events.
fn uninterrupted(id: &str, x: &[f32]) -> Vec<String> {
    let b = seqrec::bundle::Bundle::load(common::root().join("models/kws-logmel")).unwrap();
    let rec = seqrec::pipeline::Recognizer::new(b).unwrap();
    let mut p = rec.stream().unwrap();
    let mut o = seqrec::pipeline::Output::default();
    for c in x.chunks(1600) {
        p.push(c, &mut o).unwrap();
    }
    p.finish(&mut o).unwrap();
    let mut w = seqrec::sink::records::RecordWriter::new(
        Vec::new(),
        seqrec::sink::records::Format::Jsonl,
        seqrec::sink::records::Emit::Events,
        rec.labels().to_vec(),
    );
    w.events(id, &o.events).unwrap();
    String::from_utf8(w.into_inner().unwrap())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sends `x` as stream `id` in 100 ms chunks every `pace`, calling `at(k)`
/// after chunk k; collects its outputs until `done`. Returns the outputs.
async fn run_stream(
    cl: &Cluster,
    id: &str,
    chunks: Vec<Vec<u8>>,
    pace: Duration,
    mut at: impl FnMut(usize, usize),
) -> Vec<seqrec::cluster::Output> {
    let mut prod = Producer::open(cl, id, "kws-logmel", 16000).await.unwrap();
    let mut outs = prod.outputs().await.unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let collector = {
        let got = Arc::clone(&got);
        tokio::spawn(async move {
            while let Some(o) = outs.next().await {
                let o = o.unwrap();
                let done = o.kind == "done";
                got.lock().unwrap().push(o);
                if done {
                    break;
                }
            }
        })
    };
    for (k, c) in chunks.into_iter().enumerate() {
        prod.send_raw(c).await.unwrap();
        at(k, got.lock().unwrap().len());
        tokio::time::sleep(pace).await;
    }
    prod.end().await.unwrap();
    tokio::time::timeout(Duration::from_secs(90), collector)
        .await
        .expect("the stream's `done` within 90 s")
        .unwrap();
    got.lock().unwrap().clone()
}

fn f32le(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The event records among a stream's outputs.
fn events_of(outs: &[seqrec::cluster::Output]) -> Vec<String> {
    outs.iter()
        .filter(|o| o.kind == "event")
        .map(|o| o.record.clone())
        .collect()
}

/// Indices 0, 1, ... each once, the last a `done`.
fn check_indices(outs: &[seqrec::cluster::Output]) {
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(
            o.index, i as u64,
            "outputs out of order or repeated: {outs:?}"
        );
    }
    assert_eq!(outs.last().map(|o| o.kind.as_str()), Some("done"));
}

#[test]
fn a_batch_survives_a_worker_killed_mid_job() {
    let _one = one_at_a_time();
    let Some(nats) = Nats::start() else { return };
    let mut ws = workers(&nats, 3);
    let dir = tempfile::tempdir().unwrap();
    let files = batch_inputs(dir.path(), 6);
    let want = batch_output(&files);
    let sub = submit(&nats, &files);
    // kill w1 while it holds a job (it has said "taking" and not "did")
    let t0 = Instant::now();
    while ws[0].log().matches(" taking ").count() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "w1 took no second job:\n{}\n{}\n{}",
            ws[0].log(),
            ws[1].log(),
            ws[2].log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ws[0].kill9();
    let out = sub.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    // the job w1 died on was done again by another worker
    let redone = deliveries_after_the_first(&ws[1..]);
    assert!(
        redone >= 1,
        "no job was delivered twice:\n{}\n{}",
        ws[1].log(),
        ws[2].log()
    );
    eprintln!(
        "{}: {} results, {redone} redelivered",
        ws[0].name,
        files.len()
    );
}

#[test]
fn a_live_stream_moves_when_its_owner_dies() {
    let _one = one_at_a_time();
    let Some(nats) = Nats::start() else { return };
    let mut ws = workers(&nats, 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let x = live_audio();
    let want = uninterrupted("mic1", &x);
    assert!(want.len() >= 8, "{want:?}");
    let chunks: Vec<Vec<u8>> = x.chunks(1600).map(f32le).collect();
    let mut killed: Option<(String, Instant)> = None;
    let outs = rt.block_on(async {
        let cl = nats.connect().await;
        run_stream(&cl, "mic1", chunks, Duration::from_millis(20), |k, got| {
            // once the owner has published two events: kill it
            if killed.is_none() && k > 20 && got >= 2 {
                let i = ws
                    .iter()
                    .position(|w| w.log().contains("took stream mic1"))
                    .expect("an owner");
                killed = Some((ws[i].name.clone(), Instant::now()));
                ws[i].kill9();
            }
        })
        .await
    });
    let (dead, t_kill) = killed.expect("the owner was killed mid-stream");
    check_indices(&outs);
    let events = events_of(&outs);
    assert_eq!(events, want, "events differ from one uninterrupted stream");
    assert!(outs.iter().all(|o| o.kind != "error"), "{outs:?}");
    let heir: Vec<&Worker> = ws
        .iter()
        .filter(|w| w.name != dead && w.log().contains("took stream mic1"))
        .collect();
    assert_eq!(heir.len(), 1, "one other worker took the stream");
    let took = heir[0]
        .log()
        .lines()
        .find(|l| l.contains("took stream mic1"))
        .unwrap()
        .to_string();
    assert!(
        took.contains("at chunk"),
        "restored from a checkpoint: {took}"
    );
    eprintln!(
        "killed {dead}; {took}; {:.2} s after the kill",
        t_kill.elapsed().as_secs_f64()
    );
}

#[test]
fn a_nats_node_killed_mid_batch_and_mid_stream_loses_nothing() {
    let _one = one_at_a_time();
    let Some(nats) = Nats::start() else { return };
    let ws = workers(&nats, 3);
    let dir = tempfile::tempdir().unwrap();
    let files = batch_inputs(dir.path(), 6);
    let want_batch = batch_output(&files);
    let x = live_audio();
    let want_live = uninterrupted("mic2", &x);
    let chunks: Vec<Vec<u8>> = x.chunks(1600).map(f32le).collect();
    let sub = submit(&nats, &files);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut node_killed = false;
    let outs = rt.block_on(async {
        let cl = nats.connect().await;
        run_stream(&cl, "mic2", chunks, Duration::from_millis(20), |k, _| {
            if k == 40 && !node_killed {
                node_killed = true;
                nats.kill_node(1);
            }
        })
        .await
    });
    assert!(node_killed);
    check_indices(&outs);
    let events = events_of(&outs);
    assert_eq!(events, want_live);
    let out = sub.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want_batch);
    drop(ws);
}

#[test]
fn bad_input_gives_error_records_not_stuck_jobs() {
    let _one = one_at_a_time();
    let Some(nats) = Nats::start() else { return };
    let _ws = workers(&nats, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut files = batch_inputs(dir.path(), 1);
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"RIFF\x10\0\0\0WAVEnot really").unwrap();
    files.insert(1, junk);
    let want = {
        let out = Command::new(env!("CARGO_BIN_EXE_seqrec"))
            .args(["batch", "--bundle", "models/kws-logmel"])
            .args(&files)
            .current_dir(common::root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(want.contains("\"error\""), "{want}");
    let out = submit(&nats, &files).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one input failed: {err}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{err}");

    // a job message that is not JSON: an error record under its id, not a
    // job stuck on the queue
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cl = nats.connect().await;
        let js = async_nats::jetstream::new(cl.client().clone());
        let mut h = async_nats::HeaderMap::new();
        h.insert(seqrec::cluster::JOB_HEADER, "junkbatch.0");
        js.publish_with_headers("seqrec.jobs.kws-logmel", h, "{not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let results = js.get_key_value("seqrec-results").await.unwrap();
        let t0 = Instant::now();
        let v = loop {
            if let Some(v) = results.get("junkbatch.0").await.unwrap() {
                break v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no error record for the junk job"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let r: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(r["ok"], false);
        assert!(
            r["lines"].as_str().unwrap().contains("not a seqrec job"),
            "{r}"
        );
    });

    // malformed chunks: an error record each, the stream goes on
    let x = live_audio();
    let mut chunks: Vec<Vec<u8>> = x[..16000 * 3].chunks(1600).map(f32le).collect();
    chunks.insert(5, vec![1, 2, 3]); // not whole f32 samples
    chunks.insert(9, f32le(&[0.0, f32::NAN, 0.0]));
    let outs = rt.block_on(async {
        let cl = nats.connect().await;
        run_stream(&cl, "bad1", chunks, Duration::from_millis(5), |_, _| {}).await
    });
    check_indices(&outs);
    let errors: Vec<&str> = outs
        .iter()
        .filter(|o| o.kind == "error")
        .map(|o| o.record.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{outs:?}");
    assert!(errors[0].contains("chunk 5: 3 bytes is not whole 32-bit float samples"));
    assert!(errors[1].contains("chunk 9: sample 1 is not a finite number"));
    let want_live = uninterrupted("bad1", &x[..16000 * 3]);
    let events = events_of(&outs);
    assert_eq!(events, want_live, "the good chunks as one stream");
}

#[test]
fn a_worker_stopped_with_sigterm_hands_its_stream_over() {
    let _one = one_at_a_time();
    let Some(nats) = Nats::start() else { return };
    let ws = workers(&nats, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let x = live_audio();
    let want = uninterrupted("mic3", &x);
    let chunks: Vec<Vec<u8>> = x.chunks(1600).map(f32le).collect();
    let mut stopped: Option<(String, Instant)> = None;
    let outs = rt.block_on(async {
        let cl = nats.connect().await;
        run_stream(&cl, "mic3", chunks, Duration::from_millis(20), |k, got| {
            if stopped.is_none() && k > 20 && got >= 2 {
                let w = ws
                    .iter()
                    .find(|w| w.log().contains("took stream mic3"))
                    .expect("an owner");
                let st = Command::new("kill")
                    .arg(w.child.id().to_string())
                    .status()
                    .unwrap();
                assert!(st.success());
                stopped = Some((w.name.clone(), Instant::now()));
            }
        })
        .await
    });
    let (gone, t_stop) = stopped.expect("the owner was stopped mid-stream");
    check_indices(&outs);
    let events = events_of(&outs);
    assert_eq!(events, want);
    let heir = ws
        .iter()
        .find(|w| w.name != gone)
        .unwrap()
        .log()
        .lines()
        .find(|l| l.contains("took stream mic3"))
        .expect("the other worker took the stream")
        .to_string();
    // handed back with a checkpoint of where it was: nothing to skip
    assert!(heir.contains("at chunk"), "{heir}");
    let old = ws.iter().find(|w| w.name == gone).unwrap().log();
    assert!(old.contains("stopping"), "{old}");
    eprintln!(
        "{heir}; {:.2} s after SIGTERM",
        t_stop.elapsed().as_secs_f64()
    );
}
