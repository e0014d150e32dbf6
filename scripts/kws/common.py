"""Shared constants and helpers of the kws scripts (numpy only at import)."""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "target", "kws_work")
MODEL_DIR = os.path.join(ROOT, "models", "kws-logmel")   # the log-mel baseline (was models/kws)
CLIP_DIR = os.path.join(ROOT, "fixtures", "clips", "kws-logmel")

SR = 16000
N_FFT = 512
WIN = 400
HOP = 160
N_MELS = 40
FMIN = 20.0
FMAX = 7600.0
LOG_OFFSET = 1e-6
# frame i covers samples [160 i, 160 i + 512); its window centre is sample 160 i + 256
FRAME_OFFSET_S = (N_FFT / 2) / SR   # 0.016
FRAME_STEP_S = HOP / SR             # 0.01

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
LABELS = ["_silence_", "_unknown_"] + KEYWORDS
IGNORE_INDEX = -1
HIDDEN = 128
LAYERS = 2

# labelling (see make_data.py): keyword label on frames whose centre lies in
# [word end, word end + KW_WINDOW_S); frames inside a keyword are not scored;
# other words: _unknown_ on [word start, word end + UNK_TAIL_S)
KW_WINDOW_S = 0.30
UNK_TAIL_S = 0.30


def n_frames(n_samples):
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


def frame_time(i):
    return i * FRAME_STEP_S + FRAME_OFFSET_S


def logmel(y):
    """seqrec's `logmel` features (same as scripts/make_tone_bundle.py): [frames, 40] float64."""
    import librosa
    mel = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float64), sr=SR, n_fft=N_FFT, win_length=WIN,
        hop_length=HOP, window="hann", center=False, power=2.0, n_mels=N_MELS,
        fmin=FMIN, fmax=FMAX, htk=False, norm="slaney", dtype=np.float64)
    return np.log(mel + LOG_OFFSET).T


_FAST = {}


def logmel_fast(y):
    """The same features as `logmel` (max |diff| ~1e-15, checked by make_data.py
    against `logmel` and against fixtures/features/speech.logmel.npy), ~25x faster:
    frames [160 i, 160 i + 512) x (400-point periodic Hann centred in 512), numpy
    rfft, |.|^2, librosa's Slaney mel matrix, ln(. + 1e-6)."""
    if not _FAST:
        import librosa
        import scipy.signal
        w = np.zeros(N_FFT)
        a = (N_FFT - WIN) // 2
        w[a:a + WIN] = scipy.signal.get_window("hann", WIN, fftbins=True)
        _FAST["w"] = w
        _FAST["m"] = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX,
                                         htk=False, norm="slaney", dtype=np.float64).T
    y = np.asarray(y, dtype=np.float64)
    if len(y) < N_FFT:
        return np.zeros((0, N_MELS))
    fr = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    p = np.abs(np.fft.rfft(fr * _FAST["w"], axis=1)) ** 2
    return np.log(p @ _FAST["m"] + LOG_OFFSET)


def quantise(y):
    q = np.clip(np.round(y * 32767.0), -32768, 32767)
    return q / 32768.0


def write_wav16(path, y):
    import soundfile as sf
    q = np.clip(np.round(np.asarray(y) * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(path, q, SR, subtype="PCM_16", format="WAV")


def read_wav_16k_mono(path):
    """int16/32768, channel mean, resample to 16 kHz (scipy resample_poly)."""
    import soundfile as sf
    from math import gcd
    import scipy.signal
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.astype(np.float64).mean(axis=1)
    if sr != SR:
        g = gcd(sr, SR)
        x = scipy.signal.resample_poly(x, SR // g, sr // g)
    return x


def decide(post, labels=LABELS, smoothing_s=0.05, threshold=0.6, off_threshold=0.4,
           min_duration_s=0.05, refractory_s=0.5, ignore=("_silence_", "_unknown_"),
           thresholds=None, frame_step_s=FRAME_STEP_S, frame_offset_s=FRAME_OFFSET_S):
    """Reference decision, as seqrec's src/decision.rs (and make_tone_bundle.decide):

    for every label not in `ignore`, independently:
      * s[i] = causal mean of the last W = max(1, round(smoothing_s / 0.01)) frames
        (fewer at the start);
      * t_i = 0.01 i + 0.016 s;
      * idle: an event starts at the first frame with s[i] >= on (per-label
        `thresholds` override `threshold`) once t_i >= end of the previous
        emitted event of this label + refractory_s;
      * active: ends at the first frame j with s[j] < off_threshold, end_s = t_j
        (at the end of the stream: t_N);
      * events shorter than min_duration_s are dropped (no refractory).
    Events sorted by (start_s, label index)."""
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
        col = smooth[:, k]
        if not (col >= min(on, off)).any():
            continue
        last_end = -np.inf
        start = None
        for i in range(N + 1):
            t = i * frame_step_s + frame_offset_s
            s = col[i] if i < N else -1.0
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
