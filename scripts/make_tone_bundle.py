#!/usr/bin/env python3
"""Build the synthetic "tone" test bundle (fixtures/bundles/tone/) and its
fixture clips (fixtures/clips/tone/).

Exact commands (from the repository root), in this order:

    python3          scripts/make_tone_bundle.py data    # pyenv: numpy, scipy, librosa 0.11, soundfile
    /usr/bin/python3 scripts/make_tone_bundle.py train   # Debian: python3-torch 1.13, python3-onnx
    python3          scripts/make_tone_bundle.py check   # pyenv: + onnxruntime

or all three at once (spawns the interpreters above; override with $TORCH_PY
and $NP_PY):

    python3 scripts/make_tone_bundle.py all

Stage "data" (numpy/librosa):
  * synthesises 16 kHz audio: long continuous training streams, held-out
    validation streams, held-out 6 s event clips and a 10-minute event-free
    background stream (all random events / backgrounds, see `synth_stream`),
    quantised to 16 bits like a WAV file;
  * computes the features exactly as seqrec does (`logmel`: librosa
    melspectrogram with n_fft 512, win 400, hop 160, center=False, periodic
    Hann, power 2, 40 Slaney mels 20-7600 Hz with Slaney norm, then
    ln(mel + 1e-6); rows are frames), in float64, stored as float32;
  * checks that function against the repo's own reference
    fixtures/features/speech.logmel.npy (max abs diff < 1e-3);
  * writes the per-frame labels (0 _silence_, 1 beep, 2 whistle) of frame i by
    the class of the event covering the frame's centre time
    t_i = (160 i + 256) / 16000 s;
  * writes everything to target/tone_work/ (not committed), and writes the
    fixture clips fixtures/clips/tone/*.wav + expected.json.

Stage "train" (torch):
  * model: per-bin input normalisation -> GRU(40 -> 32, 1 layer,
    batch_first=False) -> Linear(32 -> 3) -> softmax. Trained "for streaming":
    truncated BPTT over chunks of the continuous training streams with the
    hidden state carried from chunk to chunk (and reset to zero at random), so
    the model sees both fresh (zero) and long-running states;
  * after training the normalisation is folded into the GRU input weights and
    biases (exact: the GRU is affine in x), so the exported graph is only
    GRU + MatMul/Add + Softmax;
  * exports fixtures/bundles/tone/tone.onnx with torch.onnx.export, opset 14:
    forward(x [T,1,40], h0 [1,1,32]) -> (y [T,1,3], hn [1,1,32]),
    input_names ["x","h0"], output_names ["y","hn"], dynamic axis 0 of x, y;
  * saves torch posteriors of one validation stream for the ORT cross-check.

Stage "check" (onnxruntime):
  * onnxruntime vs torch posteriors (max abs diff <= 1e-4), chunked ORT run
    (carrying hn -> h0) vs whole-sequence run (<= 1e-5);
  * frame accuracy on the held-out validation streams; event accuracy on the
    held-out event clips; false events on the 10-minute background stream;
  * runs the reference decision (`decide`, documented in
    fixtures/clips/tone/README.md) on every fixture clip, asserts the detected
    events equal the true ones within +-60 ms at both ends and that the
    noise-only clip gives none; writes reference_events.json,
    beeps_whistle.posteriors.npy and metrics.json;
  * writes fixtures/bundles/tone/bundle.toml.

Everything is seeded; re-running reproduces the clips byte for byte and the
model up to float rounding of torch's CPU kernels (same torch build and thread
count => same weights).
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(ROOT, "target", "tone_work")
BUNDLE = os.path.join(ROOT, "fixtures", "bundles", "tone")
CLIPDIR = os.path.join(ROOT, "fixtures", "clips", "tone")

SR = 16000
N_FFT = 512
WIN = 400
HOP = 160
N_MELS = 40
FMIN = 20.0
FMAX = 7600.0
LOG_OFFSET = 1e-6
# Time of frame i: the centre of its window. Frame i covers samples
# [160 i, 160 i + 512); librosa centres the 400-sample Hann inside the 512
# frame (56 zeros either side), so the window's centre is sample 160 i + 256.
FRAME_OFFSET_S = (N_FFT / 2) / SR   # 0.016
FRAME_STEP_S = HOP / SR             # 0.01

LABELS = ["_silence_", "beep", "whistle"]
HIDDEN = 32
OPSET = 14

# chosen from the sweep on the validation streams printed by the check stage
DECISION = dict(
    smoothing_s=0.03,
    threshold=0.6,
    off_threshold=0.4,
    min_duration_s=0.1,
    refractory_s=0.1,
    ignore=["_silence_"],
)
TOL_S = 0.06   # event boundary tolerance for the checks

# training set: continuous streams, cut into chunks for truncated BPTT
N_TRAIN_STREAMS = 64
BATCH = 32
TRAIN_STREAM_S = 120.0
CHUNK_FRAMES = 200
EPOCHS = 15
N_VAL_STREAMS = 8
VAL_STREAM_S = 60.0
N_EVENT_CLIPS = 60
EVENT_CLIP_S = 6.0
BG_LONG_S = 600.0

SEED_TRAIN = 1000
SEED_VAL = 2000
SEED_EVCLIPS = 3000
SEED_BGLONG = 4000
SEED_TORCH = 5


def frame_time(i):
    return i * FRAME_STEP_S + FRAME_OFFSET_S


def n_frames(n_samples):
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


# ==========================================================================
# synthesis (numpy only)
# ==========================================================================
def db(x):
    return 10.0 ** (x / 20.0)


def _shaped_noise(rng, n, gain_fn):
    import numpy as np
    m = max(n, 2)
    spec = np.fft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / SR)
    spec *= gain_fn(f)
    y = np.fft.irfft(spec, m)[:n]
    s = y.std()
    return y / s if s > 0 else y


def white(rng, n):
    return rng.standard_normal(n)


def pink(rng, n):
    import numpy as np
    return _shaped_noise(rng, n, lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0)))


def bandnoise(rng, n, lo, hi):
    return _shaped_noise(rng, n, lambda f: ((f >= lo) & (f <= hi)).astype(float))


def fade(n, ramp_in, ramp_out):
    """Raised-cosine ramps (in samples) at the ends of an n-sample envelope."""
    import numpy as np
    env = np.ones(n)
    for r, sl in ((ramp_in, slice(0, None)), (ramp_out, slice(None, None, -1))):
        r = min(r, n // 2)
        if r > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
            e = env[sl]
            e[:r] *= ramp
    return env


def tone(rng, label, n, amp, freq=None, ramp_in=80, ramp_out=80):
    """beep: steady sine at `freq` (default 950-1050 Hz);
    whistle: linear chirp freq=(f0, f1) (default f0 2000-2200, f1 2800-3000 Hz)."""
    import numpy as np
    t = np.arange(n) / SR
    ph0 = rng.uniform(0, 2 * np.pi)
    if label == "beep":
        f = freq if freq is not None else rng.uniform(950.0, 1050.0)
        y = np.sin(2 * np.pi * f * t + ph0)
    else:
        f0, f1 = freq if freq is not None else (rng.uniform(2000, 2200), rng.uniform(2800, 3000))
        dur = n / SR
        y = np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t * t) + ph0)
    return amp * y * fade(n, ramp_in, ramp_out)


def speechlike(rng, n):
    """A speech-like burst (unit RMS before the envelope) with a 3-7 Hz
    syllabic envelope; one of: band-limited noise (100-500 Hz to 1.5-4 kHz),
    a fricative (2.5-5 kHz to 6-8 kHz noise), or a voiced harmonic complex
    (f0 gliding within 90-250 Hz, harmonics up to 4 kHz shaped by two gliding
    formant bumps, F1 300-850 Hz, F2 900-2500 Hz, plus a little aspiration)."""
    import numpy as np
    t = np.arange(n) / SR
    fm = rng.uniform(3.0, 7.0)
    env = (0.55 + 0.45 * np.sin(2 * np.pi * fm * t + rng.uniform(0, 2 * np.pi))) ** 2
    env *= fade(n, min(800, n // 4), min(800, n // 4))
    kind = rng.random()
    if kind < 0.4:
        y = bandnoise(rng, n, rng.uniform(100, 500), rng.uniform(1500, 4000))
    elif kind < 0.6:
        y = bandnoise(rng, n, rng.uniform(2500, 5000), rng.uniform(6000, 8000))
    else:
        u = t / max(t[-1], 1e-9)
        f0a, f0b = rng.uniform(90, 250), rng.uniform(90, 250)
        f0 = f0a + (f0b - f0a) * u
        phase = 2 * np.pi * np.cumsum(f0) / SR
        F1 = rng.uniform(300, 850) + (rng.uniform(300, 850) - rng.uniform(300, 850)) * u
        F2 = rng.uniform(900, 2500) + (rng.uniform(900, 2500) - rng.uniform(900, 2500)) * u
        y = np.zeros(n)
        kmax = int(4000 / max(f0a, f0b))
        for k in range(1, kmax + 1):
            fk = k * f0
            a = (np.exp(-0.5 * ((fk - F1) / 150) ** 2) + 0.7 * np.exp(-0.5 * ((fk - F2) / 250) ** 2)
                 + 0.05) / k ** 0.5
            y += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        y /= y.std()
        y += 0.1 * bandnoise(rng, n, 2000, 6000)
        y /= y.std()
    return y * env


def note(rng, n, amp):
    """A distractor musical note (labelled _silence_): f0 log-uniform in
    100-1800 Hz but not within 880-1120 Hz, 2-8 harmonics of random,
    decaying amplitude (so at least two partials), 10 ms attack, exponential
    decay 0-4 /s."""
    import numpy as np
    while True:
        f0 = float(np.exp(rng.uniform(np.log(100), np.log(1800))))
        if not 880 <= f0 <= 1120:
            break
    t = np.arange(n) / SR
    y = np.zeros(n)
    nh = int(rng.integers(2, 9))
    tilt = rng.uniform(0.0, 1.5)
    for k in range(1, nh + 1):
        if k * f0 > 7500:
            break
        a = 1.0 if k == 1 else rng.uniform(0.3, 1.0) / k ** tilt
        y += a * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    y *= np.exp(-rng.uniform(0, 4) * t) * fade(n, 160, 160)
    return amp * y / np.abs(y).max()


def synth_stream(rng, dur_s, events=True, long_gaps=True):
    """A continuous 16 kHz stream: background segments (1-12 s each) of
    silence / white / pink noise at -60..-25 dBFS RMS, sometimes with
    speech-like bursts (-45..-20 dBFS, see `speechlike`), distractor steady
    tones outside the beep band (250-800, 1250-1800, 3500-6000 Hz) and
    distractor harmonic notes (`note`, peak -30..-8 dBFS), all _silence_,
    plus random non-overlapping events: beeps 0.15-0.8 s, 950-1050 Hz;
    whistles 0.2-0.8 s, rising 2-2.2 -> 2.8-3 kHz; peak -30..-6 dBFS; gaps
    0.3-3 s, with occasional long (8-25 s) event-free stretches.
    Returns (audio float64 quantised to int16/32768, [(label, s0, s1)] samples)."""
    import numpy as np
    n = int(round(dur_s * SR))
    y = np.zeros(n)
    # background segments
    pos = 0
    while pos < n:
        seg = min(n - pos, int(rng.uniform(1.0, 12.0) * SR))
        kind = rng.choice(["silence", "white", "pink", "white", "pink"])
        if kind != "silence":
            lvl = db(rng.uniform(-60, -25))
            gen = white if kind == "white" else pink
            y[pos:pos + seg] += lvl * gen(rng, seg) * fade(seg, 160, 160)
        # speech-like bursts
        if rng.random() < 0.5:
            p = pos + int(rng.uniform(0, 1.0) * SR)
            while p < pos + seg:
                bl = int(rng.uniform(0.15, 1.2) * SR)
                bl = min(bl, n - p)
                if bl > 400:
                    y[p:p + bl] += db(rng.uniform(-45, -20)) * speechlike(rng, bl)
                p += bl + int(rng.uniform(0.05, 1.5) * SR)
        # distractor steady tones
        if rng.random() < 0.3:
            k = rng.integers(1, 4)
            for _ in range(k):
                bl = min(int(rng.uniform(0.2, 1.0) * SR), seg)
                p = pos + int(rng.integers(0, max(1, seg - bl)))
                band = rng.integers(0, 3)
                f = [rng.uniform(250, 800), rng.uniform(1250, 1800), rng.uniform(3500, 6000)][band]
                y[p:p + bl] += tone(rng, "beep", bl, db(rng.uniform(-30, -10)), freq=f)
        # distractor harmonic notes
        if rng.random() < 0.3:
            p = pos + int(rng.uniform(0, 1.0) * SR)
            while p < pos + seg:
                bl = min(int(rng.uniform(0.15, 1.0) * SR), n - p)
                if bl > 400:
                    y[p:p + bl] += note(rng, bl, db(rng.uniform(-30, -8)))
                p += bl + int(rng.uniform(0.0, 1.0) * SR)
        pos += seg
    ev = []
    if events:
        t = int(rng.uniform(0.0, 1.5) * SR)
        while True:
            label = "beep" if rng.random() < 0.5 else "whistle"
            dl = rng.uniform(0.15, 0.8) if label == "beep" else rng.uniform(0.2, 0.8)
            ln = int(dl * SR)
            if t + ln > n:
                break
            y[t:t + ln] += tone(rng, label, ln, db(rng.uniform(-30, -6)))
            ev.append((label, t, t + ln))
            gap = rng.uniform(0.3, 3.0)
            if long_gaps and rng.random() < 0.08:
                gap = rng.uniform(8.0, 25.0)
            t += ln + int(gap * SR)
    return quantise(y), ev


def quantise(y):
    import numpy as np
    q = np.clip(np.round(y * 32767.0), -32768, 32767)
    return q / 32768.0


def frame_labels(nf, events):
    import numpy as np
    lab = np.zeros(nf, dtype=np.int64)
    tc = (np.arange(nf) * HOP + N_FFT // 2)  # centre sample of each frame
    for label, s0, s1 in events:
        lab[(tc >= s0) & (tc < s1)] = LABELS.index(label)
    return lab


def logmel(y):
    """seqrec's `logmel` features: [frames, 40] float64."""
    import numpy as np
    import librosa
    mel = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float64), sr=SR, n_fft=N_FFT, win_length=WIN,
        hop_length=HOP, window="hann", center=False, power=2.0, n_mels=N_MELS,
        fmin=FMIN, fmax=FMAX, htk=False, norm="slaney", dtype=np.float64)
    return np.log(mel + LOG_OFFSET).T


# ---- fixture clips: exact specifications ---------------------------------
# events: (label, start_s, end_s, freq, peak_dBFS, fade_in_ms, fade_out_ms)
FIXTURES = {
    "beeps_whistle.wav": dict(
        dur=3.0, seed=11,
        background=[("pink", -50.0)],
        events=[("beep", 0.40, 0.75, 1000.0, -12.0, 5, 5),
                ("whistle", 1.20, 1.75, (2000.0, 3000.0), -18.0, 5, 5),
                ("beep", 2.20, 2.55, 970.0, -24.0, 5, 5)],
    ),
    "noise_only.wav": dict(
        dur=3.0, seed=12,
        background=[("white", -45.0), ("speechlike", -28.0)],
        events=[],
    ),
    "edge_beeps.wav": dict(
        dur=3.0, seed=13,
        background=[("white", -55.0)],
        events=[("beep", 0.0, 0.40, 1020.0, -10.0, 5, 5),
                ("beep", 2.45, 3.0, 990.0, -15.0, 5, 0)],
    ),
}
# same content as beeps_whistle.wav, resampled to 44.1 kHz (scipy
# resample_poly 441/160), left = x, right = 0.5 x, s16.
STEREO_44K = ("beeps_whistle_44k_stereo.wav", "beeps_whistle.wav", 44100)


def synth_fixture(spec):
    import numpy as np
    rng = np.random.default_rng(spec["seed"])
    n = int(round(spec["dur"] * SR))
    y = np.zeros(n)
    for kind, lvl in spec["background"]:
        if kind == "white":
            y += db(lvl) * white(rng, n)
        elif kind == "pink":
            y += db(lvl) * pink(rng, n)
        elif kind == "speechlike":
            # three bursts at fixed places
            for a, b in ((0.2, 0.9), (1.2, 1.7), (2.0, 2.8)):
                s0, s1 = int(a * SR), int(b * SR)
                y[s0:s1] += db(lvl) * speechlike(rng, s1 - s0)
    truth = []
    for label, a, b, f, lvl, fi, fo in spec["events"]:
        s0, s1 = int(round(a * SR)), int(round(b * SR))
        y[s0:s1] += tone(rng, label, s1 - s0, db(lvl), freq=f,
                         ramp_in=fi * SR // 1000, ramp_out=fo * SR // 1000)
        truth.append({"label": label, "start_s": s0 / SR, "end_s": s1 / SR})
    return y, truth


def write_wav16(path, y, sr, channels=None):
    import numpy as np
    import soundfile as sf
    data = y if channels is None else np.stack(channels, axis=1)
    q = np.clip(np.round(data * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(path, q, sr, subtype="PCM_16", format="WAV")


def read_wav_16k_mono(path):
    """What seqrec's file source does: int16/32768, channel mean, resample to
    16 kHz (here: scipy resample_poly; seqrec uses rubato's FFT resampler)."""
    import numpy as np
    import soundfile as sf
    from math import gcd
    import scipy.signal
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.astype(np.float64).mean(axis=1)
    if sr != SR:
        g = gcd(sr, SR)
        x = scipy.signal.resample_poly(x, SR // g, sr // g)
    return x


def stage_data():
    import numpy as np
    import scipy.signal
    import soundfile as sf
    import librosa
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(CLIPDIR, exist_ok=True)
    t0 = time.time()

    # feature function vs the repo's reference
    sp, sr = sf.read(os.path.join(ROOT, "fixtures", "clips", "speech_16k.wav"), dtype="float32")
    assert sr == SR
    ref = np.load(os.path.join(ROOT, "fixtures", "features", "speech.logmel.npy"))
    mine = logmel(sp.astype(np.float64))
    d = float(np.abs(mine - ref).max())
    print(f"[data] logmel vs fixtures/features/speech.logmel.npy: shape {mine.shape}, max|diff| = {d:.2e}")
    assert mine.shape == ref.shape and d < 1e-3

    def make_streams(seed, count, dur, **kw):
        feats, labs, evs = [], [], []
        for k in range(count):
            rng = np.random.default_rng([seed, k])
            y, ev = synth_stream(rng, dur, **kw)
            f = logmel(y).astype(np.float32)
            feats.append(f)
            labs.append(frame_labels(len(f), ev))
            evs.append(ev)
        return feats, labs, evs

    tr_f, tr_l, _ = make_streams(SEED_TRAIN, N_TRAIN_STREAMS, TRAIN_STREAM_S)
    np.savez(os.path.join(WORK, "train.npz"), x=np.stack(tr_f), y=np.stack(tr_l))
    va_f, va_l, va_e = make_streams(SEED_VAL, N_VAL_STREAMS, VAL_STREAM_S)
    np.savez(os.path.join(WORK, "val.npz"), x=np.stack(va_f), y=np.stack(va_l))
    with open(os.path.join(WORK, "val.json"), "w") as fh:
        json.dump([[{"label": l, "start_s": a / SR, "end_s": b / SR} for l, a, b in e] for e in va_e], fh)
    ec_f, ec_l, ec_e = make_streams(SEED_EVCLIPS, N_EVENT_CLIPS, EVENT_CLIP_S, long_gaps=False)
    np.savez(os.path.join(WORK, "evclips.npz"), x=np.stack(ec_f), y=np.stack(ec_l))
    with open(os.path.join(WORK, "evclips.json"), "w") as fh:
        json.dump([[{"label": l, "start_s": a / SR, "end_s": b / SR} for l, a, b in e] for e in ec_e], fh)
    bg_f, bg_l, _ = make_streams(SEED_BGLONG, 1, BG_LONG_S, events=False)
    np.savez(os.path.join(WORK, "bglong.npz"), x=bg_f[0], y=bg_l[0])
    lab = np.concatenate([l.ravel() for l in tr_l])
    print(f"[data] train: {N_TRAIN_STREAMS} x {TRAIN_STREAM_S:.0f} s, {lab.size} frames, class share "
          + ", ".join(f"{LABELS[c]} {np.mean(lab == c):.3f}" for c in range(3)))

    # fixture clips
    expected = {}
    for name, spec in FIXTURES.items():
        y, truth = synth_fixture(spec)
        write_wav16(os.path.join(CLIPDIR, name), y, SR)
        expected[name] = truth
    src_name, out_rate = STEREO_44K[1], STEREO_44K[2]
    y16, _ = synth_fixture(FIXTURES[src_name])
    y16 = quantise(y16)   # exactly the 16 kHz clip's samples
    y44 = scipy.signal.resample_poly(y16, 441, 160)
    write_wav16(os.path.join(CLIPDIR, STEREO_44K[0]), None, out_rate, channels=[y44, 0.5 * y44])
    expected[STEREO_44K[0]] = expected[src_name]
    with open(os.path.join(CLIPDIR, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=2)
        fh.write("\n")
    print(f"[data] wrote {len(expected)} fixture clips + expected.json; {time.time() - t0:.1f} s")


# ==========================================================================
# training (torch)
# ==========================================================================
def stage_train():
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(SEED_TORCH)
    rng = np.random.default_rng(SEED_TORCH)
    tr = np.load(os.path.join(WORK, "train.npz"))
    X, Y = tr["x"], tr["y"]                     # [S, T, 40], [S, T]
    S, T, F = X.shape
    mu = X.reshape(-1, F).mean(0)
    sd = X.reshape(-1, F).std(0) + 1e-3

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.gru = nn.GRU(F, HIDDEN, 1)
            self.head = nn.Linear(HIDDEN, len(LABELS))

        def forward(self, x, h0):   # x [T, B, F] raw log-mel
            y, hn = self.gru((x - self.mu) / self.sd, h0)
            return self.head(y), hn

    class Export(nn.Module):
        def __init__(self, gru, head):
            super().__init__()
            self.gru, self.head = gru, head

        def forward(self, x, h0):
            y, hn = self.gru(x, h0)
            return torch.softmax(self.head(y), dim=-1), hn

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=4e-3)
    n_chunks = T // CHUNK_FRAMES
    groups = [list(range(g, min(g + BATCH, S))) for g in range(0, S, BATCH)]
    total_steps = EPOCHS * n_chunks * len(groups)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=6e-3, total_steps=total_steps,
                                                pct_start=0.15)
    lossf = nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X).transpose(0, 1).contiguous()   # [T, S, F]
    Yt = torch.from_numpy(Y).transpose(0, 1).contiguous()   # [T, S]
    t0 = time.time()
    step = 0
    for ep in range(EPOCHS):
        # every epoch: a random start offset, zero state at the start; the
        # streams go in fixed groups of BATCH, each group's state carried from
        # chunk to chunk, each stream's state reset to zero with p = 0.15
        off = int(rng.integers(0, CHUNK_FRAMES))
        hs = [torch.zeros(1, len(g), HIDDEN) for g in groups]
        tot, cnt = 0.0, 0
        for c in range(n_chunks - 1 if off else n_chunks):
            a = off + c * CHUNK_FRAMES
            for gi, g in enumerate(groups):
                xb, yb = Xt[a:a + CHUNK_FRAMES, g], Yt[a:a + CHUNK_FRAMES, g]
                reset = torch.from_numpy(rng.random(len(g)) < 0.15)
                h = hs[gi].detach()
                h[:, reset] = 0.0
                logits, hs[gi] = net(xb, h)
                loss = lossf(logits.reshape(-1, len(LABELS)), yb.reshape(-1))
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                if step < total_steps - 1:
                    sched.step()
                step += 1
                tot += loss.item()
                cnt += 1
        if ep % 3 == 0 or ep == EPOCHS - 1:
            print(f"[train] epoch {ep:2d} loss {tot / cnt:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0
    net.eval()

    # fold the normalisation into the GRU input weights (exact):
    # W (x - mu)/sd + b = (W/sd) x + (b - W (mu/sd))
    gru = nn.GRU(F, HIDDEN, 1)
    head = nn.Linear(HIDDEN, len(LABELS))
    with torch.no_grad():
        w = net.gru.weight_ih_l0
        gru.weight_ih_l0.copy_(w / net.sd)
        gru.bias_ih_l0.copy_(net.gru.bias_ih_l0 - w @ (net.mu / net.sd))
        gru.weight_hh_l0.copy_(net.gru.weight_hh_l0)
        gru.bias_hh_l0.copy_(net.gru.bias_hh_l0)
        head.load_state_dict(net.head.state_dict())
    exp = Export(gru, head).eval()

    va = np.load(os.path.join(WORK, "val.npz"))
    correct, total = 0, 0
    with torch.no_grad():
        for k in range(va["x"].shape[0]):
            x = torch.from_numpy(va["x"][k]).unsqueeze(1)
            h0 = torch.zeros(1, 1, HIDDEN)
            p_fold, _ = exp(x, h0)
            lg, _ = net(x, h0)
            dfold = (torch.softmax(lg, -1) - p_fold).abs().max().item()
            assert dfold < 1e-4, dfold
            pred = p_fold[:, 0].argmax(-1).numpy()
            correct += int((pred == va["y"][k]).sum())
            total += pred.size
            if k == 0:
                np.save(os.path.join(WORK, "val0.torch_post.npy"), p_fold[:, 0].numpy())
    print(f"[train] fold check ok; torch val frame accuracy {correct / total:.4f}")

    os.makedirs(BUNDLE, exist_ok=True)
    path = os.path.join(BUNDLE, "tone.onnx")
    torch.onnx.export(exp, (torch.zeros(5, 1, F), torch.zeros(1, 1, HIDDEN)), path,
                      opset_version=OPSET, input_names=["x", "h0"], output_names=["y", "hn"],
                      dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, do_constant_folding=True)
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    print(f"[train] exported {path}: ops {ops}")
    with open(os.path.join(WORK, "train_meta.json"), "w") as fh:
        json.dump({"train_seconds": train_s, "epochs": EPOCHS, "steps": step,
                   "torch_version": torch.__version__, "onnx_version": onnx.__version__,
                   "threads": torch.get_num_threads(), "ops": ops,
                   "torch_val_frame_accuracy": correct / total,
                   "train_frames": int(S * T), "params": int(sum(p.numel() for p in exp.parameters()))},
                  fh, indent=2)
    print(f"[train] training took {train_s:.1f} s ({step} steps)")


# ==========================================================================
# decision + checks (onnxruntime)
# ==========================================================================
def decide(post, labels=LABELS, smoothing_s=0.05, threshold=0.6, off_threshold=0.4,
           min_duration_s=0.08, refractory_s=0.1, ignore=("_silence_",), thresholds=None,
           frame_step_s=FRAME_STEP_S, frame_offset_s=FRAME_OFFSET_S):
    """Reference decision: per-frame posteriors [N, L] -> events.

    For every label not in `ignore`, independently:
      * W = max(1, round(smoothing_s / frame_step_s)) (= 5);
        s[i] = mean(p[max(0, i-W+1) .. i])  (causal; the first W-1 frames
        average the frames seen so far);
      * t_i = i * frame_step_s + frame_offset_s (= 0.01 i + 0.016);
      * idle: an event starts at the first frame i with s[i] >= on, where on
        = thresholds.get(label, threshold), provided t_i >= t_end(previous
        emitted event of this label) + refractory_s;
      * active: the event ends at the first frame j with s[j] < off
        (off_threshold, default = on); end_s = t_j. At the end of the
        stream an active event ends at end_s = t_N (N = number of frames),
        i.e. as if frame N were below off;
      * an event with end_s - start_s < min_duration_s is dropped (and does
        not start a refractory period).
    Events are returned sorted by (start_s, label index)."""
    import numpy as np
    thresholds = thresholds or {}
    N = post.shape[0]
    W = max(1, int(round(smoothing_s / frame_step_s)))
    cs = np.concatenate([np.zeros((1, post.shape[1])), np.cumsum(post.astype(np.float64), axis=0)])
    idx = np.arange(N)
    lo = np.maximum(0, idx - W + 1)
    smooth = (cs[idx + 1] - cs[lo]) / (idx + 1 - lo)[:, None]
    events = []
    for k, label in enumerate(labels):
        if label in ignore:
            continue
        on = thresholds.get(label, threshold)
        off = on if off_threshold is None else off_threshold
        last_end = -np.inf
        start = None
        for i in range(N + 1):
            t = i * frame_step_s + frame_offset_s
            s = smooth[i, k] if i < N else -1.0
            if start is None:
                if i < N and s >= on and t >= last_end + refractory_s - 1e-9:
                    start = t
            elif s < off:
                if t - start >= min_duration_s - 1e-9:
                    events.append({"label": label, "start_s": round(start, 6), "end_s": round(t, 6)})
                    last_end = t
                start = None
    events.sort(key=lambda e: (e["start_s"], labels.index(e["label"])))
    return events


def match(det, truth, tol=TOL_S):
    """Greedy one-to-one matching: same label, |d start| <= tol and |d end| <= tol."""
    used = set()
    pairs = []
    for t in truth:
        best = None
        for j, d in enumerate(det):
            if j in used or d["label"] != t["label"]:
                continue
            err = max(abs(d["start_s"] - t["start_s"]), abs(d["end_s"] - t["end_s"]))
            if err <= tol + 1e-9 and (best is None or err < best[0]):
                best = (err, j)
        if best is not None:
            used.add(best[1])
            pairs.append((t, det[best[1]]))
    return pairs


def stage_check():
    import numpy as np
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(BUNDLE, "tone.onnx"), providers=["CPUExecutionProvider"])

    def run(x, h0=None):
        h0 = np.zeros((1, 1, HIDDEN), np.float32) if h0 is None else h0
        y, hn = sess.run(["y", "hn"], {"x": np.asarray(x, np.float32)[:, None, :], "h0": h0})
        return y[:, 0, :], hn

    meta = {}
    with open(os.path.join(WORK, "train_meta.json")) as fh:
        tm = json.load(fh)
    meta["training"] = tm

    # ORT vs torch, chunked vs whole
    va = np.load(os.path.join(WORK, "val.npz"))
    p0, _ = run(va["x"][0])
    dt = float(np.abs(p0 - np.load(os.path.join(WORK, "val0.torch_post.npy"))).max())
    parts, h = [], None
    for a in range(0, len(va["x"][0]), 7):
        p, h = run(va["x"][0][a:a + 7], h)
        parts.append(p)
    dc = float(np.abs(np.concatenate(parts) - p0).max())
    print(f"[check] ORT vs torch max|diff| {dt:.2e}; ORT chunked(7) vs whole {dc:.2e}")
    assert dt <= 1e-4 and dc <= 1e-5
    meta["ort_vs_torch_max_abs"] = dt
    meta["ort_chunked_vs_whole_max_abs"] = dc

    # frame accuracy (held-out validation streams, zero initial state)
    conf = np.zeros((3, 3), np.int64)
    for k in range(va["x"].shape[0]):
        pred = run(va["x"][k])[0].argmax(1)
        np.add.at(conf, (va["y"][k], pred), 1)
    acc = float(np.trace(conf) / conf.sum())
    rec = (np.diag(conf) / conf.sum(1)).tolist()
    prec = (np.diag(conf) / conf.sum(0)).tolist()
    print(f"[check] held-out frame accuracy {acc:.4f} over {conf.sum()} frames "
          f"({N_VAL_STREAMS} x {VAL_STREAM_S:.0f} s)")
    print("        confusion (rows true, cols pred):\n" + "\n".join(
        f"        {LABELS[r]:>10s} " + " ".join(f"{v:7d}" for v in conf[r]) for r in range(3)))
    print("        recall " + ", ".join(f"{l} {r:.3f}" for l, r in zip(LABELS, rec))
          + "; precision " + ", ".join(f"{l} {p:.3f}" for l, p in zip(LABELS, prec)))
    meta["frame_accuracy"] = {"accuracy": acc, "frames": int(conf.sum()), "confusion": conf.tolist(),
                              "recall": dict(zip(LABELS, rec)), "precision": dict(zip(LABELS, prec))}

    # decision-setting sweep on the validation streams (the settings in
    # DECISION were picked from this table; event accuracy below is measured
    # on the separate held-out event clips)
    with open(os.path.join(WORK, "val.json")) as fh:
        va_truth = json.load(fh)
    va_post = [run(va["x"][k])[0] for k in range(va["x"].shape[0])]
    sweep = []
    print("[check] decision sweep on validation streams (tolerance +-60 ms both ends):")
    print("        smooth  on   off  mindur | recall  prec  | onset mean/max  offset mean/max (ms)")
    for sm, on, off, md in [(sm, on, off, md) for sm in (0.02, 0.03, 0.05)
                            for on, off in ((0.5, 0.5), (0.6, 0.4), (0.6, 0.5), (0.7, 0.3))
                            for md in (0.08, 0.1)]:
        cfg = dict(DECISION, smoothing_s=sm, threshold=on, off_threshold=off, min_duration_s=md)
        nt = nd = nh = 0
        e_on, e_off = [], []
        for k, post in enumerate(va_post):
            det = decide(post, **cfg)
            pairs = match(det, va_truth[k])
            nt, nd, nh = nt + len(va_truth[k]), nd + len(det), nh + len(pairs)
            e_on += [d["start_s"] - t["start_s"] for t, d in pairs]
            e_off += [d["end_s"] - t["end_s"] for t, d in pairs]
        row = dict(smoothing_s=sm, threshold=on, off_threshold=off, min_duration_s=md,
                   recall=nh / nt,
                   precision=nh / max(nd, 1), onset_mean_ms=1000 * float(np.mean(e_on)),
                   onset_max_ms=1000 * float(np.max(np.abs(e_on))),
                   offset_mean_ms=1000 * float(np.mean(e_off)),
                   offset_max_ms=1000 * float(np.max(np.abs(e_off))))
        sweep.append(row)
        print(f"        {sm:.2f}   {on:.1f}  {off:.1f}  {md:.2f}   | {row['recall']:.3f}  {row['precision']:.3f} | "
              f"{row['onset_mean_ms']:+6.1f} / {row['onset_max_ms']:3.0f}    "
              f"{row['offset_mean_ms']:+6.1f} / {row['offset_max_ms']:3.0f}")
    meta["decision_sweep_val"] = sweep

    # event accuracy on held-out 6 s clips: from a zero state, and from the
    # state left by the 10-minute event-free background stream (drift check)
    ec = np.load(os.path.join(WORK, "evclips.npz"))
    with open(os.path.join(WORK, "evclips.json")) as fh:
        ec_truth = json.load(fh)
    bg = np.load(os.path.join(WORK, "bglong.npz"))
    pb, h_bg = run(bg["x"])
    meta["event_accuracy"] = {}
    for start, h0 in (("zero_state", None), ("after_600s_background", h_bg)):
        posts = [run(ec["x"][k], h0)[0] for k in range(ec["x"].shape[0])]
        dets = [decide(p, **DECISION) for p in posts]
        res = {}
        for tol in (TOL_S, 0.1):
            n_true = n_det = n_hit = 0
            d_on, d_off = [], []
            for k, det in enumerate(dets):
                pairs = match(det, ec_truth[k], tol)
                n_true += len(ec_truth[k])
                n_det += len(det)
                n_hit += len(pairs)
                d_on += [d["start_s"] - t["start_s"] for t, d in pairs]
                d_off += [d["end_s"] - t["end_s"] for t, d in pairs]
            res[f"tol_{int(round(tol * 1000))}ms"] = r = {
                "true": n_true, "detected": n_det, "matched": n_hit,
                "recall": n_hit / max(n_true, 1), "precision": n_hit / max(n_det, 1),
                "onset_error_mean_s": float(np.mean(d_on)), "offset_error_mean_s": float(np.mean(d_off)),
                "onset_error_max_abs_s": float(np.max(np.abs(d_on))),
                "offset_error_max_abs_s": float(np.max(np.abs(d_off)))}
            print(f"[check] held-out events, {start} ({N_EVENT_CLIPS} x {EVENT_CLIP_S:.0f} s clips, "
                  f"+-{tol * 1000:.0f} ms both ends): {n_hit}/{n_true} found (recall {r['recall']:.3f}), "
                  f"{n_det} detected (precision {r['precision']:.3f}); onset error mean "
                  f"{np.mean(d_on) * 1000:+.1f} ms (max |.| {np.max(np.abs(d_on)) * 1000:.0f}), offset "
                  f"error mean {np.mean(d_off) * 1000:+.1f} ms (max |.| {np.max(np.abs(d_off)) * 1000:.0f})")
        meta["event_accuracy"][start] = res

    # long event-free background: false events, whole and chunked
    fa = decide(pb, **DECISION)
    print(f"[check] {BG_LONG_S:.0f} s event-free background stream: {len(fa)} false events "
          f"{[(e['label'], e['start_s']) for e in fa][:10]}; max beep/whistle posterior "
          f"{pb[:, 1:].max():.3f}; frame accuracy {np.mean(pb.argmax(1) == 0):.4f}")
    meta["background_long"] = {"seconds": BG_LONG_S, "false_events": fa,
                               "max_event_posterior": float(pb[:, 1:].max())}

    # other repo clips (information only; no tones in them)
    others = {}
    for name in ("speech_16k.wav", "music_22k.wav"):
        x = read_wav_16k_mono(os.path.join(ROOT, "fixtures", "clips", name))
        det = decide(run(logmel(x))[0], **DECISION)
        others[name] = det
        print(f"[check] fixtures/clips/{name}: {len(det)} events {det}")
    meta["other_repo_clips"] = others

    # fixture clips
    with open(os.path.join(CLIPDIR, "expected.json")) as fh:
        expected = json.load(fh)
    ref = {}
    ok = True
    for name in sorted(expected):
        x = read_wav_16k_mono(os.path.join(CLIPDIR, name))
        post, _ = run(logmel(x))
        det = decide(post, **DECISION)
        ref[name] = det
        pairs = match(det, expected[name])
        good = len(pairs) == len(expected[name]) == len(det)
        ok &= good
        print(f"[check] {name}: {len(x)} samples @16k, {len(post)} frames -> {'OK' if good else 'MISMATCH'}")
        for t in expected[name]:
            d = next((d for tt, d in pairs if tt is t), None)
            if d:
                print(f"        {t['label']:8s} true {t['start_s']:.3f}-{t['end_s']:.3f}  "
                      f"detected {d['start_s']:.3f}-{d['end_s']:.3f}  "
                      f"(d {1000 * (d['start_s'] - t['start_s']):+.0f} / {1000 * (d['end_s'] - t['end_s']):+.0f} ms)")
            else:
                print(f"        {t['label']:8s} true {t['start_s']:.3f}-{t['end_s']:.3f}  NOT DETECTED")
        for d in det:
            if not any(d is dd for _, dd in pairs):
                print(f"        FALSE {d}")
        if name == "beeps_whistle.wav":
            np.save(os.path.join(CLIPDIR, "beeps_whistle.posteriors.npy"), post.astype(np.float32))
    with open(os.path.join(CLIPDIR, "reference_events.json"), "w") as fh:
        json.dump(ref, fh, indent=2)
        fh.write("\n")
    meta["fixtures"] = {"expected": expected, "reference": ref, "all_match": bool(ok)}
    meta["decision"] = DECISION
    meta["frame_time"] = "t_i = 0.01 i + 0.016 s (centre sample 160 i + 256 at 16 kHz)"
    with open(os.path.join(CLIPDIR, "metrics.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    write_manifest()
    assert ok, "fixture detections do not match the truth"
    print("[check] all fixture clips match within +-60 ms; wrote reference_events.json, "
          "beeps_whistle.posteriors.npy, metrics.json, bundle.toml")


def write_manifest():
    d = DECISION
    text = f'''# Synthetic tone detector (test model): 1 kHz beeps and 2-3 kHz rising whistles.
# Generated by scripts/make_tone_bundle.py; see README.md (model card).
name = "tone"
description = "Toy streaming tone detector (1 kHz beep, 2-3 kHz rising whistle); synthetic, for tests"
kind = "audio"
labels = ["_silence_", "beep", "whistle"]

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
onnx = "tone.onnx"
backend = "native"
state = [["h0", "hn"]]

[decision]
smoothing_s = {d["smoothing_s"]}
threshold = {d["threshold"]}
off_threshold = {d["off_threshold"]}
min_duration_s = {d["min_duration_s"]}
refractory_s = {d["refractory_s"]}
ignore = ["_silence_"]
'''
    with open(os.path.join(BUNDLE, "bundle.toml"), "w") as fh:
        fh.write(text)


def main():
    stage = sys.argv[1] if len(sys.argv) > 1 else "all"
    if stage == "data":
        stage_data()
    elif stage == "train":
        stage_train()
    elif stage == "check":
        stage_check()
    elif stage == "all":
        me = os.path.abspath(__file__)
        np_py = os.environ.get("NP_PY", "python3")
        torch_py = os.environ.get("TORCH_PY", "/usr/bin/python3")
        for py, st in ((np_py, "data"), (torch_py, "train"), (np_py, "check")):
            subprocess.run([py, me, st], check=True)
    else:
        sys.exit(f"usage: {sys.argv[0]} [data|train|check|all]")


if __name__ == "__main__":
    main()
