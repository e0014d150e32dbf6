//! `seqrec serve`: the protocol, identity with batch processing (for every
//! shipped bundle with a recurrent stage), batching identity, snapshot /
//! resume, limits and bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seqrec::bundle::{Bundle, InputKind};
use seqrec::pipeline::{Output, Recognizer, process_source, process_video};
use seqrec::serve::{BatchPolicy, Limits, Server};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn rec(dir: &str) -> Recognizer {
    Recognizer::new(Bundle::load(common::root().join(dir)).unwrap()).unwrap()
}

/// A server on a free loopback port; returns its address and the shutdown switch.
async fn start(
    bundles: &[(&str, &str)],
    limits: Limits,
    policy: BatchPolicy,
) -> (String, tokio::sync::watch::Sender<bool>, Arc<Server>) {
    let recs = bundles
        .iter()
        .map(|(n, d)| (n.to_string(), rec(d)))
        .collect();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = Server::new(recs, limits, policy, rx).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let s = Arc::clone(&server);
    tokio::spawn(async move { seqrec::serve::serve(listener, s, Duration::from_secs(5)).await });
    (addr, tx, server)
}

fn policy(enabled: bool) -> BatchPolicy {
    BatchPolicy {
        enabled,
        wait: Duration::from_millis(2),
        max_batch: 64,
        threads: 1,
        engines: 2,
    }
}

/// Audio of a file as the bundle hears it (decoded, resampled).
fn audio(path: &str, rate: u32) -> Vec<f32> {
    use seqrec::source::AudioSource;
    let mut f = seqrec::source::AudioFile::open(common::root().join(path), rate).unwrap();
    let mut all = Vec::new();
    while f.read(&mut all).unwrap() > 0 {}
    all
}

/// Events and posteriors as `seqrec batch` computes them.
/// label, start, end, score
type Ev = (String, f64, f64, f32);

fn batch_of(r: &Recognizer, path: &str) -> (Vec<Ev>, Vec<f32>) {
    let mut p = r.stream().unwrap();
    let res = match r.kind() {
        InputKind::Audio => {
            let mut f = seqrec::source::AudioFile::open(common::root().join(path), r.sample_rate())
                .unwrap();
            process_source(&mut p, &mut f, false, true).unwrap()
        }
        InputKind::Video => {
            let mut v = seqrec::source::video::open(&common::root().join(path), None).unwrap();
            let out = Output {
                keep_posteriors: true,
                ..Output::default()
            };
            process_video(&mut p, &mut v, out).unwrap()
        }
    };
    let round = |t: f64| (t * 1e4).round() / 1e4;
    (
        res.output
            .events
            .iter()
            .map(|e| (e.label.clone(), round(e.start_s), round(e.end_s), e.score))
            .collect(),
        res.output.posteriors,
    )
}

/// What a stream got back.
#[derive(Debug, Default)]
struct Got {
    events: Vec<Ev>,
    posteriors: Vec<f32>,
    samples: Option<u64>,
    error: Option<String>,
    close: Option<u16>,
    token: Option<String>,
}

fn take(got: &mut Got, m: Message) -> bool {
    match m {
        Message::Text(t) => {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str().unwrap() {
                "event" => got.events.push((
                    v["label"].as_str().unwrap().to_string(),
                    v["start_s"].as_f64().unwrap(),
                    v["end_s"].as_f64().unwrap(),
                    v["score"].as_f64().unwrap() as f32,
                )),
                "posteriors" => {
                    for row in v["scores"].as_array().unwrap() {
                        for x in row.as_array().unwrap() {
                            got.posteriors.push(x.as_f64().unwrap() as f32);
                        }
                    }
                }
                "snapshot" => got.token = Some(v["token"].as_str().unwrap().to_string()),
                "done" => got.samples = v["samples"].as_u64(),
                "error" => got.error = Some(v["message"].as_str().unwrap().to_string()),
                other => panic!("unknown message {other}"),
            }
            false
        }
        Message::Close(c) => {
            got.close = c.map(|c| u16::from(c.code));
            true
        }
        _ => false,
    }
}

async fn connect(addr: &str, query: &str) -> Ws {
    let url = format!("ws://{addr}/v1/stream?{query}");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Reads until the server closes.
async fn drain(ws: &mut Ws, got: &mut Got) {
    while let Some(Ok(m)) = ws.next().await {
        if take(got, m) {
            break;
        }
    }
}

fn f32le(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Sends `x` (f32le) in chunks of the given sizes (cycled), then `end`.
async fn send_audio<S>(ws: &mut S, x: &[f32], sizes: &[usize])
where
    S: SinkExt<Message> + Unpin,
    S::Error: std::fmt::Debug,
{
    let mut i = 0;
    let mut k = 0;
    while i < x.len() {
        let n = sizes[k % sizes.len()].min(x.len() - i);
        ws.send(Message::Binary(f32le(&x[i..i + n]).into()))
            .await
            .unwrap();
        i += n;
        k += 1;
    }
    ws.send(Message::Text(r#"{"type":"end"}"#.into()))
        .await
        .unwrap();
}

async fn stream_audio(addr: &str, bundle: &str, rate: u32, x: &[f32], sizes: &[usize]) -> Got {
    let mut ws = connect(
        addr,
        &format!("bundle={bundle}&sample_rate={rate}&format=f32le&emit=posteriors"),
    )
    .await;
    let mut got = Got::default();
    // read while sending, as a client must (replies come as input is processed)
    let (mut tx, mut rx) = ws.split();
    let send = async {
        send_audio(&mut tx, x, sizes).await;
        tx
    };
    let recv = async {
        while let Some(Ok(m)) = rx.next().await {
            if take(&mut got, m) {
                break;
            }
        }
    };
    let (tx, ()) = tokio::join!(send, recv);
    ws = tx.reunite(rx).unwrap();
    drop(ws);
    got
}

/// Every audio bundle: many streams at once (different clips, different
/// chunkings, batching on), each stream's events and posteriors equal to
/// `seqrec batch` on its file; and with batching off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_equal_batch_on_every_audio_bundle() {
    let cases: &[(&str, &[&str])] = &[
        (
            "models/kws-logmel",
            &[
                "fixtures/clips/kws-logmel/espeak_yes_stock_stop.wav",
                "fixtures/clips/kws-logmel/slt_dot_down_off.wav",
                "fixtures/clips/kws-logmel/espeak_go_now_left.wav",
            ],
        ),
        (
            "models/kws",
            &[
                "fixtures/clips/kws/slt_yes_dot_stop.wav",
                "fixtures/clips/kws/espeak_go_now_off.wav",
                "fixtures/clips/kws/live_yes_down_right_go.wav",
            ],
        ),
        (
            "models/vad",
            &[
                "fixtures/clips/speech_16k.wav",
                "fixtures/clips/kws/slt_yes_dot_stop.wav",
            ],
        ),
        ("models/genre", &["fixtures/clips/music_22k.wav"]),
    ];
    for ((dir, clips), batching) in cases.iter().flat_map(|c| [(c, true), (c, false)]) {
        // one server per bundle, so that the batching check below is the
        // bundle's; a long wait makes rounds of many streams certain
        let name = dir.replace("models/", "");
        let p = BatchPolicy {
            wait: Duration::from_millis(150),
            ..policy(batching)
        };
        let (addr, _stop, server) = start(&[(name.as_str(), dir)], Limits::default(), p).await;
        let mut tasks = Vec::new();
        let mut want = Vec::new();
        {
            let r = rec(dir);
            for (k, clip) in clips.iter().enumerate() {
                // two streams of each clip, chunked differently
                for sizes in [vec![1600usize], vec![37, 4096, 511 + 97 * k]] {
                    let x = audio(clip, r.sample_rate());
                    want.push((
                        format!("{name} {clip} {batching}"),
                        batch_of(&r, clip),
                        x.len(),
                    ));
                    let (addr, name, rate) = (addr.clone(), name.clone(), r.sample_rate());
                    tasks.push(tokio::spawn(async move {
                        stream_audio(&addr, &name, rate, &x, &sizes).await
                    }));
                }
            }
        }
        let mut events = 0;
        for (t, (what, (ev, posts), n)) in tasks.into_iter().zip(want) {
            let got = t.await.unwrap();
            assert_eq!(got.error, None, "{what}");
            assert_eq!(got.samples, Some(n as u64), "{what}");
            assert_eq!(got.events, ev, "{what}: events differ from batch");
            assert_eq!(got.posteriors.len(), posts.len(), "{what}");
            // Native stages are bit-identical whatever the batch; ONNX
            // Runtime's CNN kernels (musicnn) change in the last bits with
            // the batch size, and `seqrec batch` batches 16 windows.
            let d = common::max_abs_diff(&got.posteriors, &posts);
            let tol = if rec(dir).embedder().is_some() {
                1e-5
            } else {
                0.0
            };
            assert!(d <= tol, "{what}: posteriors differ from batch by {d}");
            events += got.events.len();
        }
        // (the genre clip has no events: its posteriors are the result)
        assert!(
            events > 0 || name == "genre",
            "{name}: the clips have events"
        );
        // with batching on, rounds did run many streams at once
        let m = server.metrics().render();
        let val = |k: &str| -> f64 {
            m.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let rounds = val("seqrec_batch_size_count ");
        // (streams are dealt to 2 engines: 2-3 streams each)
        let of_2_or_more = rounds - val("seqrec_batch_size_bucket{le=\"1\"} ");
        if batching && clips.len() > 1 {
            assert!(
                of_2_or_more > 0.0,
                "{name}: no round of 2 streams or more: {m}"
            );
        } else if !batching {
            assert_eq!(val("seqrec_batch_size_sum "), rounds);
        }
    }
}

/// Video bundles: frames as rgb24 messages give batch's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_streams_equal_batch() {
    let clip = "fixtures/clips/action/rocket_motions.mp4";
    for (name, dir) in [("action", "models/action"), ("pose", "models/pose-action")] {
        let (addr, _stop, _server) = start(&[(name, dir)], Limits::default(), policy(true)).await;
        let r = rec(dir);
        let (ev, posts) = batch_of(&r, clip);
        let mut v = seqrec::source::video::open(&common::root().join(clip), None).unwrap();
        let info = v.info().clone();
        let q = format!(
            "bundle={name}&format=rgb24&width={}&height={}&fps={}&emit=posteriors",
            info.width, info.height, info.fps
        );
        let mut ws = connect(&addr, &q).await;
        let mut frame = seqrec::source::video::Frame::new();
        let mut n = 0;
        let mut got = Got::default();
        while v.read(&mut frame).unwrap() {
            ws.send(Message::Binary(frame.rgb.clone().into()))
                .await
                .unwrap();
            n += 1;
        }
        ws.send(Message::Text(r#"{"type":"end"}"#.into()))
            .await
            .unwrap();
        drain(&mut ws, &mut got).await;
        assert_eq!(got.error, None);
        assert_eq!(got.samples, Some(n));
        assert_eq!(got.events, ev, "{name}");
        let d = common::max_abs_diff(&got.posteriors, &posts);
        assert!(d == 0.0, "{name}: posteriors differ by {d}");
    }
}

/// A clip split across two connections (snapshot, then resume) gives the
/// events and posteriors of one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_resumes_on_another_connection() {
    for (name, dir, clip) in [
        (
            "kws",
            "models/kws",
            "fixtures/clips/kws/live_yes_down_right_go.wav",
        ),
        (
            "logmel",
            "models/kws-logmel",
            "fixtures/clips/kws-logmel/espeak_yes_stock_stop.wav",
        ),
        ("vad", "models/vad", "fixtures/clips/speech_16k.wav"),
    ] {
        let (addr, _stop, _server) = start(&[(name, dir)], Limits::default(), policy(true)).await;
        let r = rec(dir);
        let x = audio(clip, 16000);
        let whole = stream_audio(&addr, name, 16000, &x, &[1000]).await;
        assert!(!whole.events.is_empty(), "{name}");
        // cut inside an event if there is one: its start is carried
        let cut = (((whole.events[0].1 + whole.events[0].2) / 2.0 * 16000.0) as usize)
            .min(x.len() - 1)
            + 123;
        let q = format!("bundle={name}&sample_rate=16000&format=f32le&emit=posteriors");
        let mut a = connect(&addr, &q).await;
        let mut first = Got::default();
        for c in x[..cut].chunks(1000) {
            a.send(Message::Binary(f32le(c).into())).await.unwrap();
        }
        a.send(Message::Text(r#"{"type":"snapshot"}"#.into()))
            .await
            .unwrap();
        while first.token.is_none() {
            let m = a.next().await.unwrap().unwrap();
            take(&mut first, m);
        }
        a.close(None).await.unwrap();
        let token = first.token.clone().unwrap();
        let mut b = connect(&addr, &format!("{q}&resume={token}")).await;
        send_audio(&mut b, &x[cut..], &[1000]).await;
        let mut second = Got::default();
        drain(&mut b, &mut second).await;
        assert_eq!(second.error, None, "{name}");
        assert_eq!(
            second.samples,
            Some(x.len() as u64),
            "{name}: samples count on"
        );
        let mut events = first.events.clone();
        events.extend(second.events.clone());
        assert_eq!(events, whole.events, "{name}");
        let mut posts = first.posteriors.clone();
        posts.extend(&second.posteriors);
        assert_eq!(posts, whole.posteriors, "{name}");
        // a token is refused by another bundle's stream, clearly
        let (addr2, _s2, _x2) = start(
            &[("other", "models/kws-logmel")],
            Limits::default(),
            policy(true),
        )
        .await;
        let mut c = connect(
            &addr2,
            &format!("bundle=other&sample_rate=16000&resume={token}"),
        )
        .await;
        let mut got = Got::default();
        drain(&mut c, &mut got).await;
        if name != "logmel" {
            let e = got.error.unwrap();
            assert!(e.contains("not `other`"), "{e}");
        }
        let _ = r;
    }
}

/// Limits and bad input: each refused client gets a clear error and a close
/// code; a good stream running alongside is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_bad_input_touch_only_their_client() {
    let limits = Limits {
        max_streams: 3,
        idle_timeout: Duration::from_millis(600),
        max_message_bytes: 64 * 1024,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start(
        &[("kws", "models/kws-logmel"), ("action", "models/action")],
        limits,
        policy(true),
    )
    .await;
    let clip = "fixtures/clips/kws-logmel/espeak_yes_stock_stop.wav";
    let x = audio(clip, 16000);
    let want = batch_of(&rec("models/kws-logmel"), clip).0;
    // the good stream: slowly, alongside everything below
    let good = {
        let addr = addr.clone();
        let x = x.clone();
        tokio::spawn(async move {
            let mut ws = connect(&addr, "bundle=kws&sample_rate=16000&format=f32le").await;
            for c in x.chunks(8000) {
                ws.send(Message::Binary(f32le(c).into())).await.unwrap();
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            ws.send(Message::Text(r#"{"type":"end"}"#.into()))
                .await
                .unwrap();
            let mut got = Got::default();
            drain(&mut ws, &mut got).await;
            got
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = |q: &'static str, payload: Option<Message>| {
        let addr = addr.clone();
        async move {
            let mut ws = connect(&addr, q).await;
            if let Some(p) = payload {
                let _ = ws.send(p).await;
            }
            let mut got = Got::default();
            drain(&mut ws, &mut got).await;
            got
        }
    };
    let cases: Vec<(&str, Option<Message>, &str, u16)> = vec![
        (
            "bundle=nope&sample_rate=16000",
            None,
            "no bundle `nope`",
            1008,
        ),
        ("bundle=kws&sample_rate=44100", None, "takes 16000 Hz", 1008),
        (
            "bundle=kws&sample_rate=16000&format=mp3",
            None,
            "s16le or f32le",
            1008,
        ),
        (
            "bundle=kws&sample_rate=16000&format=s16le",
            Some(Message::Binary(vec![1u8, 2, 3].into())),
            "not whole 16-bit samples",
            1003,
        ),
        (
            "bundle=kws&sample_rate=16000&format=f32le",
            Some(Message::Binary(vec![255u8; 16].into())),
            "not a finite number",
            1003,
        ),
        (
            "bundle=kws&sample_rate=16000",
            Some(Message::Text("hello".into())),
            "text messages are JSON",
            1003,
        ),
        (
            "bundle=kws&sample_rate=16000",
            Some(Message::Text(r#"{"type":"jump"}"#.into())),
            "unknown message type",
            1003,
        ),
        (
            "bundle=kws&sample_rate=16000&resume=AAAA",
            None,
            "not a snapshot token",
            1008,
        ),
        (
            "bundle=action&format=rgb24&width=4&height=4&fps=10",
            Some(Message::Binary(vec![0u8; 47].into())),
            "48 bytes",
            1003,
        ),
        (
            "bundle=action&format=rgb24&width=4000&height=4000&fps=10",
            None,
            "message limit",
            1009,
        ),
        (
            "bundle=kws&sample_rate=16000",
            None,
            "no data for 0.6 s",
            1008,
        ),
    ];
    for (q, payload, msg, code) in cases {
        let got = refused(q, payload).await;
        let e = got.error.unwrap_or_default();
        assert!(e.contains(msg), "{q}: {e}");
        assert_eq!(got.close, Some(code), "{q}");
    }
    // a message over the size limit closes that client
    let mut big = connect(&addr, "bundle=kws&sample_rate=16000").await;
    let _ = big
        .send(Message::Binary(vec![0u8; 100 * 1024].into()))
        .await;
    let mut got = Got::default();
    drain(&mut big, &mut got).await;
    assert_eq!(got.samples, None);
    let good = good.await.unwrap();
    assert_eq!(good.error, None);
    assert_eq!(good.events, want);
    assert_eq!(good.samples, Some(x.len() as u64));
    // the stream limit: 3 held open; the 4th is refused
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&addr, "bundle=kws&sample_rate=16000").await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = refused("bundle=kws&sample_rate=16000", None).await;
    assert!(got.error.unwrap_or_default().contains("server full"));
    assert_eq!(got.close, Some(1013));
}

/// A stream is back-pressured: a client sending far faster than the engine
/// has at most `queue` messages in flight, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_client_is_back_pressured_and_loses_nothing() {
    let limits = Limits {
        queue_chunks: 2,
        ..Limits::default()
    };
    let (addr, _stop, server) = start(&[("kws", "models/kws")], limits, policy(true)).await;
    let clip = "fixtures/clips/kws/live_yes_down_right_go.wav";
    let x = audio(clip, 16000);
    let mut long = Vec::new();
    for _ in 0..4 {
        long.extend_from_slice(&x);
    }
    let got = stream_audio(&addr, "kws", 16000, &long, &[160]).await;
    assert_eq!(got.samples, Some(long.len() as u64));
    let metrics = server.metrics().render();
    assert!(metrics.contains("seqrec_streams_total 1"), "{metrics}");
    assert!(metrics.contains("seqrec_dropped_total 0"));
    assert!(got.events.len() >= 4, "{:?}", got.events);
}

/// Raw HTTP/1.1 on loopback (the tests need no HTTP client crate).
async fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The binary: HTTP endpoints, `POST /v1/recognize` = `seqrec batch`, and
/// SIGTERM giving an open stream its final events and `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_http_and_shuts_down_gracefully() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seqrec"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--bundle",
            "kws=models/kws-logmel",
            "--bundle",
            "vad=models/vad",
        ])
        .current_dir(common::root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|l| l.split(':').take(2).collect::<Vec<_>>().join(":").into())
        .unwrap_or_else(|| panic!("{line}"));
    let (st, body) = http(&addr, "GET", "/healthz", b"").await;
    assert_eq!((st, body.trim()), (200, "ok"));
    let (st, body) = http(&addr, "GET", "/v1/bundles", b"").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["bundles"][0]["name"], "kws");
    assert_eq!(v["bundles"][0]["labels"][2], "yes");
    assert_eq!(v["bundles"][1]["sample_rate"], 16000);
    let clip = "fixtures/clips/kws-logmel/espeak_yes_stock_stop.wav";
    let wav = std::fs::read(common::root().join(clip)).unwrap();
    let (st, body) = http(
        &addr,
        "POST",
        &format!("/v1/recognize?bundle=kws&name={clip}"),
        &wav,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let batch = common::seqrec_ok(["batch", "--bundle", "models/kws-logmel", clip]);
    assert_eq!(body, String::from_utf8_lossy(&batch.stdout));
    let (st, body) = http(
        &addr,
        "POST",
        "/v1/recognize?bundle=kws&name=junk.wav",
        b"RIFF not a wav",
    )
    .await;
    assert_eq!(st, 422);
    assert!(body.contains("\"file\":\"junk.wav\""), "{body}");
    let (st, body) = http(&addr, "GET", "/metrics", b"").await;
    assert_eq!(st, 200);
    assert!(body.contains("# TYPE seqrec_latency_seconds histogram"));
    // an open stream, half sent, then SIGTERM: its events and done come
    let x = audio(clip, 16000);
    let want = batch_of(&rec("models/kws-logmel"), clip).0;
    let mut ws = connect(&addr, "bundle=kws&sample_rate=16000&format=f32le").await;
    for c in x.chunks(4000) {
        ws.send(Message::Binary(f32le(c).into())).await.unwrap();
    }
    // SIGTERM once the server has read all of it (what is still in the
    // socket when the server stops reading is not the stream's)
    for _ in 0..200 {
        let (_, m) = http(&addr, "GET", "/metrics", b"").await;
        if m.contains(&format!("seqrec_samples_total {}", x.len())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut got = Got::default();
    drain(&mut ws, &mut got).await;
    assert_eq!(got.samples, Some(x.len() as u64));
    assert_eq!(got.events, want);
    assert_eq!(got.close, Some(1001));
    let status = child.wait().unwrap();
    assert!(status.success());
}
