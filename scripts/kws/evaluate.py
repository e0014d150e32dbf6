#!/usr/bin/env python3
"""Step 4-6 of the kws bundle: evaluate models/kws/kws.onnx, pick the decision
settings, write models/kws/bundle.toml, metrics and the fixture clips.

    python3 scripts/kws/evaluate.py        # pyenv python: numpy, scipy, librosa, soundfile, onnxruntime

All runs use onnxruntime from a zero initial state (the 12-minute stream runs
continuously in one call), frame time t_i = 0.01 i + 0.016 s.

  1. keyword accuracy, held-out voices (data/iso.npz): each held-out keyword
     clip alone in a 1.5 s window; prediction = argmax over the 10 keywords of
     the keyword's maximum posterior over the window; accuracy vs truth.
  2. decision settings: a sweep (smoothing x on/off threshold x min duration,
     refractory 0.5 s, ignore _silence_ and _unknown_) on data/val.npz
     (TRAINING voices, separate seed), scored as hits - 2 x false events;
  3. held-out streams (data/test.npz, 150 x 8 s, keywords among other words):
     a keyword is found when an event of its label starts within
     [word start, word end + 1.0 s]; latency = event start - word end;
     other events are false (wrong keyword on a keyword, or on other speech);
  4. false alarms per hour on data/fa.npz (12 min of held-out voices saying
     only non-keyword words, near misses included, plus noise);
  5. fixture clips (fixtures/clips/kws/): built from held-out voices' clips,
     expected.json with the true words and the events the reference decision
     produces on ORT posteriors.
Results: models/kws/metrics.json (and the printed log).
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (WORK, MODEL_DIR, CLIP_DIR, SR, LABELS, KEYWORDS, HIDDEN, LAYERS,  # noqa: E402
                    decide, logmel, quantise, write_wav16, read_wav_16k_mono)

DATA = os.path.join(WORK, "data")
# overridable for a dry run of this script on another model / output folders
MODEL_DIR = os.environ.get("KWS_MODEL_DIR", MODEL_DIR)
CLIP_DIR = os.environ.get("KWS_CLIP_DIR", CLIP_DIR)
ONNX_PATH = os.path.join(MODEL_DIR, "kws.onnx")
MATCH_AFTER_S = 1.0
REFRACTORY_S = 0.5


class Model:
    def __init__(self):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(ONNX_PATH, so, providers=["CPUExecutionProvider"])

    def __call__(self, x, h0=None):
        h0 = np.zeros((LAYERS, 1, HIDDEN), np.float32) if h0 is None else h0
        y, hn = self.sess.run(["y", "hn"], {"x": np.asarray(x, np.float32)[:, None, :], "h0": h0})
        return y[:, 0, :], hn


def score_streams(posts, truths, cfg):
    hits, lat, wrong, false, n_true = 0, [], 0, 0, 0
    per_kw = {k: [0, 0] for k in KEYWORDS}
    for post, words in zip(posts, truths):
        det = decide(post, **cfg)
        used = set()
        kws = [w for w in words if w["word"] in KEYWORDS]
        n_true += len(kws)
        for w in kws:
            per_kw[w["word"]][1] += 1
            for j, d in enumerate(det):
                if j not in used and d["label"] == w["word"] and \
                        w["start_s"] <= d["start_s"] <= w["end_s"] + MATCH_AFTER_S:
                    used.add(j)
                    hits += 1
                    per_kw[w["word"]][0] += 1
                    lat.append(d["start_s"] - w["end_s"])
                    break
        for j, d in enumerate(det):
            if j in used:
                continue
            on_kw = any(w["start_s"] <= d["start_s"] <= w["end_s"] + MATCH_AFTER_S for w in kws)
            if on_kw:
                wrong += 1
            else:
                false += 1
    return dict(true=n_true, hits=hits, recall=hits / max(n_true, 1), wrong_keyword=wrong,
                false_other=false, latency=lat, per_keyword={k: v[0] / max(v[1], 1) for k, v in per_kw.items()})


def cfg_of(sm, on, off, md):
    return dict(smoothing_s=sm, threshold=on, off_threshold=off, min_duration_s=md,
                refractory_s=REFRACTORY_S, ignore=("_silence_", "_unknown_"))


# fixture clips: (name, candidate held-out voices, words in order, seed); the
# first (voice, rendition) whose reference events equal the keywords is kept
# (else the last one tried, flagged events_match_keywords = false)
FIXTURES = [
    ("espeak_yes_stock_stop.wav", ["espeak_en-029_f4", "espeak_en-gb_klatt3", "espeak_en-us_m6",
                                   "espeak_en-gb-x-rp_f4"], ["yes", "stock", "stop"], 1),
    ("espeak_go_now_left.wav", ["espeak_en-gb_klatt3", "espeak_en-us_m6", "espeak_en-029_f4",
                                "espeak_en-gb-x-gbcwmd_f4"], ["go", "now", "left"], 2),
    ("slt_dot_down_off.wav", ["flite_slt", "festival_cmu_us_slt_arctic_hts"], ["dot", "down", "off"], 3),
]


def build_fixture(index, voice, words, seed, rend):
    """Words of one held-out voice (rendition `rend`, peak -9 dBFS), from 0.25 s,
    0.25 s apart, 0.6 s of tail; white noise at -55 dBFS RMS; 16-bit."""
    import soundfile as sf
    rng = np.random.default_rng(seed)
    xs = []
    for w in words:
        c = [c for c in index if c["voice"] == voice and c["word"] == w]
        x, _ = sf.read(os.path.join(WORK, c[rend % len(c)]["path"]), dtype="float64")
        xs.append(x * 10 ** (-9 / 20))
    gap = int(0.25 * SR)
    n = int(0.25 * SR) + sum(len(x) for x in xs) + gap * (len(xs) - 1) + int(0.6 * SR)
    y = np.zeros(n)
    t = int(0.25 * SR)
    truth = []
    for w, x in zip(words, xs):
        y[t:t + len(x)] += x
        truth.append({"word": w, "start_s": round(t / SR, 4), "end_s": round((t + len(x)) / SR, 4)})
        t += len(x) + gap
    y += 10 ** (-55 / 20) * rng.standard_normal(n)
    return quantise(y), truth


def main():
    t0 = time.time()
    m = Model()
    out = {}

    # 1. isolated keyword accuracy on held-out voices
    iso = np.load(os.path.join(DATA, "iso.npz"))["x"]
    iso_t = json.load(open(os.path.join(DATA, "iso.json")))
    conf = np.zeros((10, 10), np.int64)
    by_voice = {}
    for x, t in zip(iso, iso_t):
        p, _ = m(x)
        pred = int(p[:, 2:].max(0).argmax())
        truth = KEYWORDS.index(t["word"])
        conf[truth, pred] += 1
        fam = t["voice"].split("_")[0]
        v = by_voice.setdefault(fam, [0, 0])
        v[0] += pred == truth
        v[1] += 1
    acc = float(np.trace(conf) / conf.sum())
    print(f"[eval] held-out isolated keyword accuracy: {acc:.4f} ({np.trace(conf)}/{conf.sum()})")
    print("       by engine: " + ", ".join(f"{k} {a / n:.3f} ({a}/{n})" for k, (a, n) in by_voice.items()))
    print("       confusion (rows true, cols pred): " + " ".join(f"{k:>5s}" for k in KEYWORDS))
    for i, k in enumerate(KEYWORDS):
        print(f"       {k:>5s} " + " ".join(f"{v:5d}" for v in conf[i]))
    out["isolated_keyword_accuracy"] = {"accuracy": acc, "n": int(conf.sum()),
                                        "by_engine": {k: a / n for k, (a, n) in by_voice.items()},
                                        "confusion": conf.tolist(), "labels": KEYWORDS}

    # 2. decision sweep on validation streams (training voices)
    va = np.load(os.path.join(DATA, "val.npz"))["x"]
    va_t = json.load(open(os.path.join(DATA, "val.json")))
    va_p = [m(x)[0] for x in va]
    sweep = []
    print("[eval] decision sweep on validation streams (training voices, 100 x 8 s):")
    for sm in (0.03, 0.05, 0.1):
        for on, off in ((0.5, 0.3), (0.6, 0.4), (0.7, 0.5), (0.8, 0.5), (0.9, 0.6)):
            for md in (0.03, 0.06):
                r = score_streams(va_p, va_t, cfg_of(sm, on, off, md))
                row = dict(smoothing_s=sm, threshold=on, off_threshold=off, min_duration_s=md,
                           recall=r["recall"], wrong=r["wrong_keyword"], false=r["false_other"],
                           score=r["hits"] - 2 * (r["wrong_keyword"] + r["false_other"]))
                sweep.append(row)
                print(f"       sm {sm:.2f} on {on:.1f} off {off:.1f} md {md:.2f}: recall {r['recall']:.3f} "
                      f"wrong {r['wrong_keyword']:3d} false {r['false_other']:3d} score {row['score']}")
    best = max(sweep, key=lambda r: r["score"])
    cfg = cfg_of(best["smoothing_s"], best["threshold"], best["off_threshold"], best["min_duration_s"])
    print(f"[eval] chosen: {cfg}")
    out["decision_sweep_val"] = sweep
    out["decision"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}

    # 3. held-out streams
    te = np.load(os.path.join(DATA, "test.npz"))["x"]
    te_t = json.load(open(os.path.join(DATA, "test.json")))
    te_p = [m(x)[0] for x in te]
    r = score_streams(te_p, te_t, cfg)
    lat = np.array(r.pop("latency") or [np.nan])
    hours = len(te) * 8.0 / 3600
    n_other = sum(1 for ws in te_t for w in ws if w["word"] not in KEYWORDS)
    r.update(latency_mean_s=float(lat.mean()), latency_median_s=float(np.median(lat)),
             latency_p90_s=float(np.percentile(lat, 90)), latency_max_s=float(lat.max()),
             seconds=len(te) * 8.0, other_words=n_other)
    print(f"[eval] held-out streams ({len(te)} x 8 s, {r['true']} keywords, {n_other} other words): "
          f"recall {r['recall']:.3f}, wrong-keyword events {r['wrong_keyword']}, false events on other "
          f"speech/noise {r['false_other']} ({r['false_other'] / hours:.0f}/h of this dense speech); latency word "
          f"end -> event start mean {lat.mean() * 1000:.0f} ms, median {np.median(lat) * 1000:.0f}, "
          f"p90 {np.percentile(lat, 90) * 1000:.0f}, max {lat.max() * 1000:.0f}")
    print("       per keyword recall: " + ", ".join(f"{k} {v:.2f}" for k, v in r["per_keyword"].items()))
    out["heldout_streams"] = r

    # 4. false alarms on 12 min of keyword-free held-out speech + noise
    fa = np.load(os.path.join(DATA, "fa.npz"))
    pf, _ = m(fa["x"])
    secs = float(fa["seconds"])
    ev = decide(pf, **cfg)
    per = {}
    for e in ev:
        per[e["label"]] = per.get(e["label"], 0) + 1
    curve = []
    for on, off in ((0.5, 0.3), (0.6, 0.4), (0.7, 0.5), (0.8, 0.5), (0.9, 0.6)):
        c = dict(cfg, threshold=on, off_threshold=off)
        curve.append({"threshold": on, "off_threshold": off,
                      "false_alarms_per_hour": len(decide(pf, **c)) * 3600 / secs,
                      "heldout_recall": score_streams(te_p, te_t, c)["recall"]})
    print(f"[eval] keyword-free held-out audio {secs / 60:.1f} min ({int(fa['words'])} words): "
          f"{len(ev)} false alarms = {len(ev) * 3600 / secs:.1f} per hour; by label {per}")
    print("       threshold curve: " + "; ".join(
        f"on {c['threshold']}: FA/h {c['false_alarms_per_hour']:.0f}, recall {c['heldout_recall']:.3f}" for c in curve))
    out["false_alarms"] = {"seconds": secs, "words": int(fa["words"]), "events": len(ev),
                           "per_hour": len(ev) * 3600 / secs, "by_label": per, "threshold_curve": curve}

    # 5. fixture clips from held-out voices
    index = json.load(open(os.path.join(WORK, "clips", "index.json")))
    os.makedirs(CLIP_DIR, exist_ok=True)
    expected = {}
    for name, voices, words, seed in FIXTURES:
        chosen = None
        for voice, rend in [(v, r) for v in voices for r in range(5 if v.startswith(("flite", "fest")) else 2)]:
            y, truth = build_fixture(index, voice, words, seed, rend)
            post, _ = m(logmel(y))
            det = decide(post, **cfg)
            kws = [w for w in truth if w["word"] in KEYWORDS]
            ok = [d["label"] for d in det] == [w["word"] for w in kws] and all(
                w["start_s"] <= d["start_s"] <= w["end_s"] + MATCH_AFTER_S for d, w in zip(det, kws))
            if chosen is None or ok:
                chosen = (y, truth, det, ok, rend, voice)
            if ok:
                break
        y, truth, det, ok, rend, voice = chosen
        write_wav16(os.path.join(CLIP_DIR, name), y)
        # re-read as seqrec would (int16 -> float) and recompute, so the reference is exact
        post, _ = m(logmel(read_wav_16k_mono(os.path.join(CLIP_DIR, name))))
        det = decide(post, **cfg)
        expected[name] = {"voice": voice, "rendition": rend, "words": truth,
                          "keywords": [w["word"] for w in truth if w["word"] in KEYWORDS],
                          "events": det, "events_match_keywords": bool(ok)}
        if name == FIXTURES[0][0]:
            np.save(os.path.join(CLIP_DIR, name.replace(".wav", ".posteriors.npy")), post.astype(np.float32))
        print(f"[eval] fixture {name} ({voice}): words {[w['word'] for w in truth]} -> events "
              f"{[(d['label'], d['start_s'], d['end_s']) for d in det]} {'OK' if ok else 'MISMATCH'}")
    with open(os.path.join(CLIP_DIR, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=2)
        fh.write("\n")
    out["fixtures"] = expected
    tm = os.path.join(WORK, "train_meta.json")
    out["training"] = json.load(open(tm)) if os.path.exists(tm) else None
    out["eval_seconds"] = time.time() - t0
    for p in (os.path.join(MODEL_DIR, "metrics.json"),):
        with open(p, "w") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")
    write_manifest(cfg)
    print(f"[eval] wrote models/kws/bundle.toml, metrics.json, fixtures; {time.time() - t0:.0f} s")


def write_manifest(d):
    text = f'''# Keyword spotter (yes/no/up/down/left/right/on/off/stop/go), trained on synthetic TTS voices only.
# Generated by scripts/kws/evaluate.py (the log-mel baseline, models/kws-logmel); see README.md (model card).
name = "kws-logmel"
description = "Baseline log-mel keyword spotter (superseded by models/kws), 10 words + _unknown_ + _silence_; GRU 2x128 trained on TTS speech only"
kind = "audio"
labels = {json.dumps(LABELS)}

[audio]
sample_rate = 16000

[features]
kind = "logmel"
n_fft = 512
win_length = 400
hop_length = 160
n_mels = 40
fmin = 20.0
fmax = 7600.0
mel_scale = "slaney"
center = false

[sequence]
onnx = "kws.onnx"
backend = "native"
state = [["h0", "hn"]]

[decision]
smoothing_s = {d["smoothing_s"]}
threshold = {d["threshold"]}
off_threshold = {d["off_threshold"]}
min_duration_s = {d["min_duration_s"]}
refractory_s = {d["refractory_s"]}
ignore = ["_silence_", "_unknown_"]
'''
    with open(os.path.join(MODEL_DIR, "bundle.toml"), "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
