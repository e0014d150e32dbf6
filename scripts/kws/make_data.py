#!/usr/bin/env python3
"""Step 2 of the kws bundle: training / evaluation sequences, per-frame labels, features.

    python3 scripts/kws/make_data.py        # pyenv python: numpy, scipy, librosa 0.11, soundfile

Reads the word clips of step 1 (target/kws_work/clips/index.json) and writes
to target/kws_work/data/ (each output is skipped when it already exists, so
the step is resumable; delete a file to rebuild it):

  train_NNN.npz   SHARDS x SEQ_PER_SHARD sequences of 8 s from the TRAINING voices:
                  x [N, 797, 40] float32 log-mel, y [N, 797] int8 frame labels
  val.npz         100 x 8 s, training voices, other seed (decision tuning)
  test.npz/.json  150 x 8 s, HELD-OUT voices (event recall, latency); truth in .json
  iso.npz/.json   every held-out keyword clip alone in a 1.5 s window (accuracy)
  fa.npz          12 min of keyword-free audio from held-out voices: non-keyword
                  words (near misses included) + noise, one continuous stream

Sequence recipe (`make_seq`): background of digital silence (15 %) or
white / pink / brown noise at -75..-40 dBFS RMS; words placed one after another
from t = 0.05..1.0 s with gaps of 0.05..1.2 s (10 %: 1.5..3 s); each word is a
keyword with probability P_KW (else a non-keyword word, half of them near
misses such as of/cup/dot/now/know/dawn/gone/yet/lift/write/stock), drawn from
a random voice, speed-perturbed by 0.88..1.12 (linear interpolation), peak
-32..-3 dBFS. Then, each with its probability: a synthetic room reverb
(exponentially decaying noise, RT60 0.15..0.7 s, 30 %), a high-pass
(80..400 Hz, 30 %) or low-pass (3..7 kHz, 20 %) Butterworth filter, and
16-bit quantisation.

Frame labels (frame centre t_i = 0.01 i + 0.016 s; words are [start, end) of the
trimmed clip as placed):
  * keyword: frames with t in [end, end + 0.30 s) -> the keyword; frames inside
    the keyword [start, end) are not scored (label -1, masked from the loss);
  * other word: frames with t in [start, end + 0.30 s) -> _unknown_;
  * everything else -> _silence_ (noise, silence);
  a later word overwrites the tail window of an earlier one.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (WORK, SR, LABELS, KEYWORDS, IGNORE_INDEX, KW_WINDOW_S, UNK_TAIL_S,  # noqa: E402
                    logmel, logmel_fast, quantise)
import synth  # noqa: E402

DATA = os.path.join(WORK, "data")
SEQ_S = 8.0
SHARDS = 10
SEQ_PER_SHARD = 500
P_KW = 0.45
SEED = 20260


def db(x):
    return 10.0 ** (x / 20.0)


def load_clips(split):
    import soundfile as sf
    with open(os.path.join(WORK, "clips", "index.json")) as fh:
        index = json.load(fh)
    by_word = {}
    for c in index:
        if c["split"] != split:
            continue
        x, sr = sf.read(os.path.join(WORK, c["path"]), dtype="float64")
        by_word.setdefault(c["word"], []).append((c["voice"], x))
    return by_word


def noise(rng, n, kind):
    if kind == "white":
        return rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec *= 1.0 / np.maximum(f, 20.0) ** (0.5 if kind == "pink" else 1.0)
    y = np.fft.irfft(spec, n)
    return y / (y.std() + 1e-12)


def pick_word(rng, by_word, p_kw, allow_kw=True):
    unk = [w for w in synth.UNKNOWN if w in by_word]
    near = [w for w in synth.NEAR_MISSES if w in by_word]
    if allow_kw and rng.random() < p_kw:
        w = KEYWORDS[int(rng.integers(len(KEYWORDS)))]
    elif rng.random() < 0.5:
        w = near[int(rng.integers(len(near)))]
    else:
        w = unk[int(rng.integers(len(unk)))]
    cands = by_word[w]
    return w, cands[int(rng.integers(len(cands)))][1]


def speed(rng, x):
    r = rng.uniform(0.88, 1.12)
    n = max(2, int(len(x) / r))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def post_fx(rng, y):
    import scipy.signal
    n = len(y)
    if rng.random() < 0.3:
        rt = rng.uniform(0.15, 0.7)
        L = int(rt * SR)
        t = np.arange(L) / SR
        rir = rng.standard_normal(L) * np.exp(-6.9 * t / rt) * rng.uniform(0.1, 0.5)
        rir[0] = 1.0
        y = scipy.signal.fftconvolve(y, rir)[:n]
        y /= max(1.0, np.abs(y).max() / 0.9)
    r = rng.random()
    if r < 0.3:
        sos = scipy.signal.butter(2, rng.uniform(80, 400), "highpass", fs=SR, output="sos")
        y = scipy.signal.sosfilt(sos, y)
    elif r < 0.5:
        sos = scipy.signal.butter(2, rng.uniform(3000, 7000), "lowpass", fs=SR, output="sos")
        y = scipy.signal.sosfilt(sos, y)
    return y


def make_seq(rng, by_word, dur_s, p_kw=P_KW, allow_kw=True, fx=True, first_s=(0.05, 1.0)):
    """Returns (audio, words) with words = [(word, start_sample, end_sample)]."""
    n = int(round(dur_s * SR))
    kind = rng.choice(["silence", "white", "pink", "brown", "pink", "white"], p=[0.15, 0.25, 0.25, 0.15, 0.1, 0.1])
    y = np.zeros(n)
    words = []
    t = int(rng.uniform(*first_s) * SR)
    while True:
        w, x = pick_word(rng, by_word, p_kw, allow_kw)
        x = speed(rng, x) * db(rng.uniform(-32, -3))
        if t + len(x) > n:
            break
        y[t:t + len(x)] += x
        words.append((w, t, t + len(x)))
        gap = rng.uniform(1.5, 3.0) if rng.random() < 0.1 else rng.uniform(0.05, 1.2)
        t += len(x) + int(gap * SR)
    if fx:
        y = post_fx(rng, y)
    if kind != "silence":
        y += db(rng.uniform(-75, -40)) * noise(rng, n, kind)
    else:
        y += rng.uniform(0, 2) * rng.standard_normal(n) / 32768.0   # dither-level
    return quantise(np.clip(y, -1, 1)), words


def frame_labels(nf, words):
    lab = np.zeros(nf, dtype=np.int8)
    tc = (np.arange(nf) * 160 + 256) / SR
    for w, s0, s1 in words:
        a, b = s0 / SR, s1 / SR
        if w in KEYWORDS:
            lab[(tc >= a) & (tc < b)] = IGNORE_INDEX
            lab[(tc >= b) & (tc < b + KW_WINDOW_S)] = LABELS.index(w)
        else:
            lab[(tc >= a) & (tc < b + UNK_TAIL_S)] = LABELS.index("_unknown_")
    return lab


def build(path, seed, by_word, count, dur_s, truth_path=None, **kw):
    if os.path.exists(path):
        print(f"[data] {os.path.basename(path)} exists, kept")
        return
    t0 = time.time()
    xs, ys, truth = [], [], []
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        y, words = make_seq(rng, by_word, dur_s, **kw)
        f = logmel_fast(y).astype(np.float32)
        xs.append(f)
        ys.append(frame_labels(len(f), words))
        truth.append([{"word": w, "start_s": a / SR, "end_s": b / SR} for w, a, b in words])
    np.savez(path + ".tmp.npz", x=np.stack(xs), y=np.stack(ys))
    os.replace(path + ".tmp.npz", path)
    if truth_path:
        with open(truth_path, "w") as fh:
            json.dump(truth, fh)
    lab = np.concatenate(ys)
    share = ", ".join(f"{LABELS[c]} {np.mean(lab == c):.3f}" for c in range(len(LABELS)))
    print(f"[data] {os.path.basename(path)}: {count} x {dur_s} s in {time.time() - t0:.0f} s; "
          f"masked {np.mean(lab == IGNORE_INDEX):.3f}, {share}", flush=True)


def build_iso(path, by_word):
    """Each held-out keyword clip alone in a 1.5 s window: word start 0.2..0.4 s,
    peak -20..-6 dBFS, pink/white noise -70..-50 dBFS RMS (no reverb/filter)."""
    if os.path.exists(path):
        print("[data] iso.npz exists, kept")
        return
    rng = np.random.default_rng(SEED + 7)
    n = int(1.5 * SR)
    xs, truth = [], []
    for w in KEYWORDS:
        for voice, x in by_word[w]:
            x = x[: n - int(0.45 * SR)]
            a = int(rng.uniform(0.2, 0.4) * SR)
            y = np.zeros(n)
            y[a:a + len(x)] = x * db(rng.uniform(-20, -6))
            y += db(rng.uniform(-70, -50)) * noise(rng, n, "pink" if rng.random() < 0.5 else "white")
            xs.append(logmel_fast(quantise(y)).astype(np.float32))
            truth.append({"word": w, "voice": voice, "start_s": a / SR, "end_s": (a + len(x)) / SR})
    np.savez(path, x=np.stack(xs))
    with open(path.replace(".npz", ".json"), "w") as fh:
        json.dump(truth, fh)
    print(f"[data] iso.npz: {len(xs)} held-out keyword clips x 1.5 s")


def check_features():
    """logmel_fast == librosa logmel == the repo's reference features."""
    from common import ROOT, read_wav_16k_mono
    sp = read_wav_16k_mono(os.path.join(ROOT, "fixtures", "clips", "speech_16k.wav"))
    ref = np.load(os.path.join(ROOT, "fixtures", "features", "speech.logmel.npy"))
    a, b = logmel(sp), logmel_fast(sp)
    d1, d2 = float(np.abs(a - b).max()), float(np.abs(b - ref).max())
    print(f"[data] logmel_fast vs librosa {d1:.1e}; vs fixtures/features/speech.logmel.npy {d2:.1e}")
    assert a.shape == b.shape == ref.shape and d1 < 1e-9 and d2 < 1e-3


def main():
    os.makedirs(DATA, exist_ok=True)
    t0 = time.time()
    check_features()
    tr = load_clips("train")
    print(f"[data] train clips: {sum(len(v) for v in tr.values())} ({time.time() - t0:.0f} s)", flush=True)
    for s in range(SHARDS):
        build(os.path.join(DATA, f"train_{s:03d}.npz"), SEED + 100 + s, tr, SEQ_PER_SHARD, SEQ_S)
    build(os.path.join(DATA, "val.npz"), SEED + 1, tr, 100, SEQ_S, os.path.join(DATA, "val.json"))
    del tr
    ho = load_clips("heldout")
    print(f"[data] held-out clips: {sum(len(v) for v in ho.values())}", flush=True)
    build(os.path.join(DATA, "test.npz"), SEED + 2, ho, 150, SEQ_S, os.path.join(DATA, "test.json"))
    build_iso(os.path.join(DATA, "iso.npz"), ho)
    # 12 minutes of keyword-free speech + noise, one stream (built as 90 x 8 s
    # pieces without reverb so that the pieces join seamlessly, then concatenated)
    fa = os.path.join(DATA, "fa.npz")
    if not os.path.exists(fa):
        xs, words = [], []
        for k in range(90):
            rng = np.random.default_rng([SEED + 3, k])
            y, w = make_seq(rng, ho, SEQ_S, allow_kw=False, fx=False, first_s=(0.05, 0.3))
            xs.append(y)
            words += w
        y = np.concatenate(xs)
        np.savez(fa, x=logmel_fast(y).astype(np.float32), seconds=len(y) / SR, words=len(words))
        print(f"[data] fa.npz: {len(y) / SR / 60:.1f} min keyword-free, {len(words)} words", flush=True)
    print(f"[data] done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
