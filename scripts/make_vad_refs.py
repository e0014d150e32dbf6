#!/usr/bin/env python3
"""Silero VAD reference data: test clips, per-chunk probabilities, speech segments.

Exact command (run from the repository root, pyenv python with numpy +
onnxruntime; espeak-ng and sox on PATH):

    python3 scripts/make_vad_refs.py

optionally with the cross-check against the silero-vad package's own code
(needs the unpacked wheel and Debian's /usr/bin/python3 with torch 1.13):

    python3 -m pip download --no-deps -d /tmp/svad silero-vad==6.2.3
    (cd /tmp/svad && unzip -o -q silero_vad-6.2.3-py3-none-any.whl -d x)
    python3 scripts/make_vad_refs.py --crosscheck /tmp/svad/x

`--refs-only` keeps the committed WAVs and only recomputes the references
(use it if another espeak-ng/sox version would change the speech clip).

Tool versions used for the committed files: onnxruntime 1.31.1, numpy 2.4.6
(pyenv Python 3.11.7), eSpeak NG 1.51, SoX v14.4.2; cross-check with torch
1.13.0a0 + numpy 1.24.2 (Debian Python 3.11.2) and the same onnxruntime.

Inputs
  models/vad/silero_vad.onnx      silero_vad/data/silero_vad.onnx from the PyPI
                                  wheel silero-vad 6.2.3 (the opset-16 model
                                  that load_silero_vad(onnx=True) loads)
  fixtures/clips/speech_16k.wav   already committed (57336 samples)

Outputs (fixtures/clips/vad/)
  speech_pauses.wav   8.0 s (128000 samples = 250 chunks): espeak-ng en-us
                      -s 175 "hello there" / "turn the lights on" / "what time
                      is it" placed at 0.5 s, ~3.0 s, ~5.6 s, over a white
                      noise bed (numpy seed 20240611, sigma 0.0015, about
                      -56 dBFS) that runs through the whole clip
  noise_only.wav      4.0 s (64000 samples = 125 chunks): pink noise (RMS
                      0.008) + white noise (RMS 0.003), numpy seed 20240612,
                      no speech
  <clip>.probs.npy    float32 [n_chunks]: the model's speech probability per
                      512-sample chunk, for speech_pauses, noise_only and
                      speech_16k
  reference_segments.json
                      {clip: [{"start_s": .., "end_s": ..}, ...]}, clip = the
                      WAV's stem; every value is an integer sample count / 16000
                      (exact in decimal, so round(s * 16000) gives the sample)
  meta.json           sha256 of the model, counts, probability ranges, the
                      segments in samples, the cross-check result (if run),
                      and under "derived" the case speech_pauses_cut: the
                      first 64300 samples of speech_pauses.wav (ends inside
                      "turn the lights on", 300 samples into chunk 125), to
                      test the end-of-stream close and the zero-padded partial
                      chunk; its probabilities are speech_pauses.probs.npy[:125]
                      and the padded chunk

All WAVs: 16000 Hz, mono, PCM s16le, plain 44-byte RIFF header (Python's wave
module), float -> int16 as round(clip(y, -1, 1) * 32767). Read back as int16 /
32768 (what torchaudio/soundfile give) before running the model.

Model calls (silero_vad.utils_vad.OnnxWrapper.__call__ at 16 kHz)
  * The audio is cut into chunks of 512 new samples: chunk i = samples
    [512 i, 512 i + 512).
  * Model input `input` = float32 [1, 576]: the previous 64 samples (zeros
    before the first chunk) followed by the 512 new ones. After the call the
    context becomes the last 64 values of that 576-vector, i.e. the last 64
    samples of chunk i.
  * `state` = float32 [2, 1, 128], zeros before the first chunk, then the
    previous call's `stateN`.
  * `sr` = int64 scalar 16000 (0-d tensor).
  * Probability = `output`[0, 0] (float32 [1, 1]).
  * One intra-op / inter-op thread, CPU provider (as OnnxWrapper does).

Last chunk shorter than 512 samples: ZERO-PADDED to 512 and scored, as the
package's offline function get_speech_timestamps (and
OnnxWrapper.audio_forward) does: a user running a file expects all of it
scored. (Silero's streaming path cannot take a partial chunk:
OnnxWrapper.__call__ raises ValueError for one, and the VADIterator example
stops with `if len(chunk) < window_size_samples: break`; seqrec did that
until 2026-12-04, see models/vad/README.md.) So n_chunks =
ceil(n_samples / 512). The two generated clips are whole numbers of chunks;
speech_16k.wav has 57336 = 111 * 512 + 504 samples, so its last 504 samples
(digital silence) and 8 zeros are chunk 111: 112 chunks.

Segments: silero_vad.utils_vad.VADIterator with its defaults
  threshold = 0.5, neg_threshold = threshold - 0.15 = 0.35 (Python float
  0.5 - 0.15), min_silence_duration_ms = 100 -> MIN_SIL = 16000 * 100 / 1000
  = 1600 samples, speech_pad_ms = 30 -> PAD = 16000 * 30 / 1000 = 480 samples,
  window W = 512. Probabilities are the float32 outputs widened to float64 and
  compared with these float64 thresholds.
  State: triggered = False, temp_end = 0. For chunk i = 0, 1, 2, ... with
  probability p, current_sample = 512 (i + 1) (the END of chunk i: the
  iterator adds the chunk length before it scores it):
    1. if p >= 0.5 and temp_end != 0: temp_end = 0   (speech came back)
    2. if p >= 0.5 and not triggered: triggered = True, emit
         start = max(0, current_sample - PAD - W) = max(0, 512 i - 480)
       (the start of the chunk, 30 ms earlier, clamped at 0); next chunk.
    3. if p < 0.35 and triggered:
         if temp_end == 0: temp_end = current_sample = 512 (i + 1)
         if current_sample - temp_end < MIN_SIL (1600): nothing, next chunk;
         else: emit end = temp_end + PAD - W = temp_end - 32,
               temp_end = 0, triggered = False.
       So with k = the first chunk below 0.35 after the speech (temp_end =
       512 (k + 1)), the segment ends at the first chunk j >= k + 4 that is
       again below 0.35 (512 (j - k) >= 1600 <=> j - k >= 3.125), provided no
       chunk in k+1..j reached 0.5 (that clears temp_end; the segment goes
       on and a later silence starts a new count). The end sample is
       512 (k + 1) - 32 = 512 k + 480: the start of the first silent chunk
       plus 30 ms.
    4. anything else (e.g. 0.35 <= p < 0.5): nothing. Such a chunk neither
       clears temp_end nor is checked against MIN_SIL.
  End of stream (not part of VADIterator, which has no flush; our rule,
  same as get_speech_timestamps does with its open segment): if triggered
  after the last chunk, the segment ends at n_samples, the length of the
  audio (not the padded length), whether or not a temp_end was
  pending. Start padding is clamped at 0, and the end at n_samples.
  No minimum speech duration, no merging, no max-speech split (those belong to
  get_speech_timestamps only). Consecutive segments cannot overlap: a new
  start needs a chunk j' > j >= k + 4, so start' >= 512 (k + 5) - 480 > end.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "vad", "silero_vad.onnx")
OUT = os.path.join(ROOT, "fixtures", "clips", "vad")
SPEECH_16K = os.path.join(ROOT, "fixtures", "clips", "speech_16k.wav")

SR = 16000
W = 512
CTX = 64
THRESHOLD = 0.5
NEG_THRESHOLD = THRESHOLD - 0.15
MIN_SIL = SR * 100 / 1000  # 1600.0
PAD = SR * 30 / 1000  # 480.0

UTTERANCES = ["hello there", "turn the lights on", "what time is it"]
# seconds of noise bed before each utterance; the rest of 8.0 s follows the last
GAPS_BEFORE = [0.5, 1.5, 1.2]
SPEECH_PAUSES_LEN = 250 * W  # 8.0 s
NOISE_ONLY_LEN = 125 * W  # 4.0 s

CLIPS = ["speech_pauses", "noise_only", "speech_16k"]
# Derived case (no WAV of its own): the first CUT_SAMPLES of speech_pauses.wav,
# which stops inside "turn the lights on" and 300 samples into chunk 125, to
# exercise the end-of-stream close and the zero-padded partial chunk. Its first
# 125 probabilities are speech_pauses.probs.npy[:125] (the model is causal).
CUT_NAME = "speech_pauses_cut"
CUT_SAMPLES = 125 * W + 300  # 64300


# ---------------------------------------------------------------- WAV I/O
def write_wav(path, y):
    pcm = np.round(np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        assert w.getframerate() == SR, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0)


def load_clip(name):
    if name == CUT_NAME:
        return read_wav(clip_path("speech_pauses"))[:CUT_SAMPLES]
    return read_wav(clip_path(name))


def clip_path(name):
    if name == CUT_NAME:
        return clip_path("speech_pauses")
    if name == "speech_16k":
        return SPEECH_16K
    return os.path.join(OUT, name + ".wav")


# ---------------------------------------------------------------- clips
def espeak_16k(text, tmp):
    raw = os.path.join(tmp, "raw.wav")
    out = os.path.join(tmp, "u16.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-w", raw, text], check=True)
    # -D: no dither => deterministic (same as scripts/make_clips.sh)
    subprocess.run(
        ["sox", "-D", raw, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", out,
         "rate", "-v", "16000"],
        check=True,
    )
    return read_wav(out).astype(np.float64)


def pink(n, rng):
    """Pink (1/f power) noise by shaping white noise's spectrum, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)
    spec[0] = 0.0
    y = np.fft.irfft(spec, n)
    return y / np.sqrt(np.mean(y * y))


def make_clips():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        utts = [espeak_16k(t, tmp) for t in UTTERANCES]
    rng = np.random.default_rng(20240611)
    y = rng.standard_normal(SPEECH_PAUSES_LEN) * 0.0015
    pos = 0
    placed = []
    for gap, u in zip(GAPS_BEFORE, utts):
        pos += int(round(gap * SR))
        y[pos:pos + len(u)] += u
        placed.append((pos, pos + len(u)))
        pos += len(u)
    assert pos <= SPEECH_PAUSES_LEN, pos
    write_wav(os.path.join(OUT, "speech_pauses.wav"), y)

    rng = np.random.default_rng(20240612)
    z = pink(NOISE_ONLY_LEN, rng) * 0.008 + rng.standard_normal(NOISE_ONLY_LEN) * 0.003
    write_wav(os.path.join(OUT, "noise_only.wav"), z)
    return placed


# ---------------------------------------------------------------- model + iterator
def chunk_probs(session, audio):
    """Per-chunk probabilities, exactly as OnnxWrapper.__call__ in a stream,
    the partial last chunk zero-padded (see docstring)."""
    n = -(-len(audio) // W)
    audio = np.concatenate([audio, np.zeros(n * W - len(audio), dtype=np.float32)])
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, CTX), dtype=np.float32)
    sr = np.array(SR, dtype=np.int64)
    probs = np.empty(n, dtype=np.float32)
    for i in range(n):
        x = np.concatenate([context, audio[None, i * W:(i + 1) * W]], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": sr})
        probs[i] = out[0, 0]
        context = x[:, -CTX:]
    return probs


def vad_segments(probs, n_samples):
    """VADIterator's rules (defaults) over per-chunk probabilities, plus the
    end-of-stream close. Returns [(start_sample, end_sample)]."""
    triggered = False
    temp_end = 0
    current_sample = 0
    segs = []
    start = None
    for p32 in probs:
        p = float(p32)
        current_sample += W
        if p >= THRESHOLD and temp_end:
            temp_end = 0
        if p >= THRESHOLD and not triggered:
            triggered = True
            start = int(max(0, current_sample - PAD - W))
            continue
        if p < NEG_THRESHOLD and triggered:
            if not temp_end:
                temp_end = current_sample
            if current_sample - temp_end < MIN_SIL:
                continue
            end = int(temp_end + PAD - W)
            temp_end = 0
            triggered = False
            segs.append((start, end))
            start = None
    if triggered:
        segs.append((start, n_samples))
    return segs


def session_for(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


# ---------------------------------------------------------------- cross-check
def package_child(wheel_dir, model, clips_json):
    """Runs in /usr/bin/python3 (torch): the package's own OnnxWrapper +
    VADIterator (+ get_speech_timestamps, and the TorchScript model
    silero_vad.jit chunk by chunk, for information)."""
    import torch
    from silero_vad.utils_vad import (OnnxWrapper, VADIterator, get_speech_timestamps,
                                      init_jit_model)

    torch.set_num_threads(1)
    jit_path = os.path.join(wheel_dir, "silero_vad", "data", "silero_vad.jit")
    jit = init_jit_model(jit_path) if os.path.isfile(jit_path) else None
    result = {}
    for name in json.loads(clips_json):
        audio = torch.from_numpy(load_clip(name))
        model_w = OnnxWrapper(model, force_onnx_cpu=True)
        probs = []

        class Recording:
            def __call__(self, x, sr):
                out = model_w(x, sr)
                probs.append(float(out.item()))
                return out

            def reset_states(self):
                model_w.reset_states()

        it = VADIterator(Recording())
        events = []
        for i in range(0, len(audio), W):
            chunk = audio[i:i + W]
            if len(chunk) < W:
                # zero-padded, as get_speech_timestamps pads its last chunk
                # (the package's streaming example would stop here instead)
                chunk = torch.nn.functional.pad(chunk, (0, W - len(chunk)))
            ev = it(chunk)
            if ev:
                events.append(ev)
        segs = []
        for ev in events:
            if "start" in ev:
                segs.append([ev["start"], None])
            else:
                segs[-1][1] = ev["end"]
        if segs and segs[-1][1] is None:
            segs[-1][1] = len(audio)  # end-of-stream rule (ours)
        gst = get_speech_timestamps(audio, OnnxWrapper(model, force_onnx_cpu=True))
        jit_probs = None
        if jit is not None:  # the PyTorch (TorchScript) model: an independent run
            jit.reset_states()
            with torch.no_grad():
                padded = torch.nn.functional.pad(audio, (0, (-len(audio)) % W))
                jit_probs = [float(jit(padded[i:i + W], SR).item())
                             for i in range(0, len(padded), W)]
        result[name] = {
            "jit_probs": jit_probs,
            "probs": probs,
            "segments": segs,
            "get_speech_timestamps": [[d["start"], d["end"]] for d in gst],
        }
    print(json.dumps(result))


def crosscheck(wheel_dir, ours):
    """Spawns /usr/bin/python3 with the unpacked wheel and this interpreter's
    onnxruntime (+ packaging) on sys.path; compares with `ours`."""
    import onnxruntime
    import packaging

    py = os.environ.get("TORCH_PY", "/usr/bin/python3")
    with tempfile.TemporaryDirectory() as tmp:
        for mod in (onnxruntime, packaging):
            d = os.path.dirname(mod.__file__)
            os.symlink(d, os.path.join(tmp, os.path.basename(d)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(wheel_dir), tmp])
        env["OMP_NUM_THREADS"] = "1"
        clips = CLIPS + [CUT_NAME]
        r = subprocess.run(
            [py, os.path.abspath(__file__), "_package_child", wheel_dir, MODEL, json.dumps(clips)],
            env=env, check=True, capture_output=True, text=True,
        )
    pkg = json.loads(r.stdout.strip().splitlines()[-1])
    report = {"interpreter": py}
    ok = True
    for name in CLIPS + [CUT_NAME]:
        p_ours = ours[name]["probs"].astype(np.float64)
        p_pkg = np.array(pkg[name]["probs"], dtype=np.float64)
        same_len = len(p_ours) == len(p_pkg)
        diff = float(np.max(np.abs(p_ours - p_pkg))) if same_len else None
        segs_ours = [list(s) for s in ours[name]["segments"]]
        same_segs = segs_ours == pkg[name]["segments"]
        ok &= same_len and diff is not None and diff < 1e-5 and same_segs
        jit_diff = None
        if pkg[name]["jit_probs"] is not None and same_len:
            jit_diff = float(np.max(np.abs(p_ours - np.array(pkg[name]["jit_probs"]))))
        report[name] = {
            "n_chunks_package": len(p_pkg),
            "max_abs_prob_diff": diff,
            "max_abs_prob_diff_jit_model": jit_diff,
            "segments_equal": same_segs,
            "package_segments": pkg[name]["segments"],
            "package_get_speech_timestamps": pkg[name]["get_speech_timestamps"],
        }
    report["ok"] = bool(ok)
    return report


# ---------------------------------------------------------------- main
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_package_child":
        package_child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refs-only", action="store_true", help="keep the committed WAVs")
    ap.add_argument("--crosscheck", metavar="WHEEL_DIR",
                    help="unpacked silero-vad 6.2.3 wheel: compare with the package's own code")
    args = ap.parse_args()

    import onnxruntime

    placed = None
    if not args.refs_only:
        placed = make_clips()
    sess = session_for(MODEL)
    ours = {}
    for name in CLIPS + [CUT_NAME]:
        audio = load_clip(name)
        probs = chunk_probs(sess, audio)
        ours[name] = {"n_samples": len(audio), "probs": probs,
                      "segments": vad_segments(probs, len(audio))}
        if name != CUT_NAME:
            np.save(os.path.join(OUT, name + ".probs.npy"), probs)
    cut = ours[CUT_NAME]["probs"]
    whole = CUT_SAMPLES // W  # the padded last chunk of the cut differs
    assert np.array_equal(cut[:whole], ours["speech_pauses"]["probs"][:whole])

    segs_json = {
        name: [{"start_s": s / SR, "end_s": e / SR} for s, e in ours[name]["segments"]]
        for name in CLIPS
    }
    with open(os.path.join(OUT, "reference_segments.json"), "w") as f:
        json.dump(segs_json, f, indent=1)
        f.write("\n")

    meta = {
        "generator": "scripts/make_vad_refs.py",
        "model": "models/vad/silero_vad.onnx",
        "model_sha256": sha256(MODEL),
        "source": "PyPI silero-vad 6.2.3, silero_vad/data/silero_vad.onnx",
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "sample_rate": SR, "chunk": W, "context": CTX,
        "threshold": THRESHOLD, "neg_threshold": NEG_THRESHOLD,
        "min_silence_samples": MIN_SIL, "speech_pad_samples": PAD,
        "partial_last_chunk": "zero-padded and scored (as get_speech_timestamps)",
        "clips": {},
    }
    for name in CLIPS:
        o = ours[name]
        p = o["probs"]
        meta["clips"][name] = {
            "wav": os.path.relpath(clip_path(name), ROOT),
            "n_samples": o["n_samples"],
            "n_chunks": int(len(p)),
            "padding_zeros": len(p) * W - o["n_samples"],
            "prob_min": float(p.min()), "prob_max": float(p.max()),
            "prob_mean": float(p.mean()),
            "chunks_ge_threshold": int((p >= THRESHOLD).sum()),
            "segments_samples": [list(s) for s in o["segments"]],
        }
    c = ours[CUT_NAME]
    meta["derived"] = {CUT_NAME: {
        "from": "speech_pauses.wav, first %d samples" % CUT_SAMPLES,
        "n_samples": c["n_samples"],
        "n_chunks": int(len(c["probs"])),
        "padding_zeros": len(c["probs"]) * W - c["n_samples"],
        "probs": "speech_pauses.probs.npy[:%d] (identical, checked), then the padded chunk" % (CUT_SAMPLES // W),
        "segments_samples": [list(x) for x in c["segments"]],
        "segments": [{"start_s": a / SR, "end_s": b / SR} for a, b in c["segments"]],
    }}
    if placed is not None:
        meta["clips"]["speech_pauses"]["utterances_samples"] = [
            {"text": t, "start": a, "end": b} for t, (a, b) in zip(UTTERANCES, placed)
        ]
    else:
        # --refs-only: the WAVs, and so where their words lie, are the committed ones
        try:
            with open(os.path.join(OUT, "meta.json")) as f:
                old = json.load(f)["clips"]["speech_pauses"].get("utterances_samples")
        except (OSError, KeyError, ValueError):
            old = None
        if old:
            meta["clips"]["speech_pauses"]["utterances_samples"] = old
    if args.crosscheck:
        meta["crosscheck"] = crosscheck(args.crosscheck, ours)
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")

    for name in CLIPS:
        m = meta["clips"][name]
        print(f"{name}: {m['n_chunks']} chunks (the last padded with {m['padding_zeros']} zeros), "
              f"p in [{m['prob_min']:.6f}, {m['prob_max']:.6f}], "
              f"{m['chunks_ge_threshold']} >= {THRESHOLD}; segments {segs_json[name]}")
    print(f"{CUT_NAME}: segments {meta['derived'][CUT_NAME]['segments']}")
    if args.crosscheck:
        cc = meta["crosscheck"]
        for name in CLIPS + [CUT_NAME]:
            print(f"crosscheck {name}: {cc[name]}")
        print("crosscheck ok" if cc["ok"] else "CROSSCHECK FAILED")
        if not cc["ok"]:
            sys.exit(1)


if __name__ == "__main__":
    main()
