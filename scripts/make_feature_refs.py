#!/usr/bin/env python3
"""Generate librosa reference features for the seqrec feature-extraction tests.

Reads  fixtures/clips/speech_16k.wav, fixtures/clips/music_22k.wav
Writes fixtures/features/*.npy and fixtures/features/params.json

All features are computed in float64 (the clip is read with soundfile as
float32, i.e. int16 / 32768, then widened with .astype(np.float64); the mel
filterbank is built with dtype=np.float64) and stored as float32 arrays shaped
[frames, bins] (librosa's [bins, frames] transposed). Filterbanks are stored
as float32 [n_mels, 1 + n_fft // 2]; the Hann window as float64 [400].

The script also re-derives every output with plain numpy (explicit framing,
rfft, filterbank product, DCT-II) and asserts agreement, so the definitions in
fixtures/features/README.md are checked rather than assumed.

Usage:  python3 scripts/make_feature_refs.py      (from anywhere)
Needs:  numpy, scipy, soundfile, librosa 0.11
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.fft
import scipy.signal
import soundfile as sf
import librosa

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CLIPS = os.path.join(ROOT, "fixtures", "clips")
OUT = os.path.join(ROOT, "fixtures", "features")

LOG_OFFSET = 1e-6    # logmel = ln(mel + LOG_OFFSET)
DB_AMIN = 1e-10      # mfcc input = 10*log10(max(mel, DB_AMIN))

SETS = {
    "speech": dict(
        clip="speech_16k.wav",
        sample_rate=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        window="hann",          # periodic Hann (scipy get_window fftbins=True)
        center=False,
        pad_mode=None,          # unused when center=False
        power=2.0,
        n_mels=40,
        fmin=20.0,
        fmax=7600.0,
        mel_scale="slaney",     # htk=False
        mel_norm="slaney",
        n_mfcc=13,
    ),
    "music": dict(
        clip="music_22k.wav",
        sample_rate=22050,
        n_fft=1024,
        win_length=1024,
        hop_length=256,
        window="hann",
        center=True,
        pad_mode="constant",    # zero padding of n_fft//2 on both sides
        power=2.0,
        n_mels=96,
        fmin=0.0,
        fmax=11025.0,
        mel_scale="htk",        # htk=True
        mel_norm="slaney",
        n_mfcc=20,
    ),
}


def load_clip(name, expected_sr):
    y, sr = sf.read(os.path.join(CLIPS, name), dtype="float32", always_2d=False)
    assert sr == expected_sr, (name, sr, expected_sr)
    assert y.ndim == 1, "clips must be mono"
    # soundfile's float32 read of PCM_16 is exactly int16 / 32768
    yi, _ = sf.read(os.path.join(CLIPS, name), dtype="int16")
    assert np.array_equal(y, yi.astype(np.float32) / np.float32(32768.0))
    return y.astype(np.float64)


def mel_fb(p, dtype):
    return librosa.filters.mel(
        sr=p["sample_rate"], n_fft=p["n_fft"], n_mels=p["n_mels"],
        fmin=p["fmin"], fmax=p["fmax"], htk=(p["mel_scale"] == "htk"),
        norm=p["mel_norm"], dtype=dtype)


def numpy_power_spec(y, p):
    """Independent re-derivation of librosa.stft framing (|X|^2), [frames, bins]."""
    n_fft, hop, wl = p["n_fft"], p["hop_length"], p["win_length"]
    win = scipy.signal.get_window("hann", wl, fftbins=True)
    lpad = (n_fft - wl) // 2
    w = np.zeros(n_fft)
    w[lpad:lpad + wl] = win                 # centred zero-padding to n_fft
    if p["center"]:
        assert p["pad_mode"] == "constant"
        y = np.pad(y, n_fft // 2, mode="constant")
    n_frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    X = np.fft.rfft(y[idx] * w[None, :], axis=1)
    return np.abs(X) ** p["power"]


def compute(name, p):
    y = load_clip(p["clip"], p["sample_rate"])
    htk = p["mel_scale"] == "htk"
    kw = dict(
        y=y, sr=p["sample_rate"], n_fft=p["n_fft"], hop_length=p["hop_length"],
        win_length=p["win_length"], window=p["window"], center=p["center"],
        power=p["power"], n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"],
        htk=htk, norm=p["mel_norm"], dtype=np.float64)
    if p["center"]:
        kw["pad_mode"] = p["pad_mode"]
    mel = librosa.feature.melspectrogram(**kw)                   # [n_mels, T] f64
    assert mel.dtype == np.float64
    logmel = np.log(mel + LOG_OFFSET)
    S_db = librosa.power_to_db(mel, ref=1.0, amin=DB_AMIN, top_db=None)
    mfcc = librosa.feature.mfcc(S=S_db, n_mfcc=p["n_mfcc"], dct_type=2, norm="ortho")

    # --- independent checks -------------------------------------------------
    fb64 = mel_fb(p, np.float64)
    fb32_default = librosa.filters.mel(
        sr=p["sample_rate"], n_fft=p["n_fft"], n_mels=p["n_mels"], fmin=p["fmin"],
        fmax=p["fmax"], htk=htk, norm=p["mel_norm"])              # librosa default dtype
    assert fb32_default.dtype == np.float32
    np.testing.assert_allclose(fb32_default, fb64, rtol=1e-6, atol=1e-9)

    P = numpy_power_spec(y, p)                                     # [T, bins]
    mel_np = P @ fb64.T                                            # [T, n_mels]
    assert mel_np.shape == mel.T.shape, (mel_np.shape, mel.shape)
    np.testing.assert_allclose(mel_np, mel.T, rtol=1e-9, atol=1e-12 * mel.max())

    mfcc_np = scipy.fft.dct(10.0 * np.log10(np.maximum(mel, DB_AMIN)),
                            type=2, norm="ortho", axis=0)[: p["n_mfcc"]]
    np.testing.assert_allclose(mfcc, mfcc_np, rtol=1e-12, atol=1e-9)

    n = len(y)
    if p["center"]:
        expect_T = 1 + n // p["hop_length"]
    else:
        expect_T = 1 + (n - p["n_fft"]) // p["hop_length"]
    assert mel.shape[1] == expect_T, (mel.shape, expect_T)

    outs = {
        f"{name}.mel.npy": mel.T,
        f"{name}.logmel.npy": logmel.T,
        f"{name}.mfcc.npy": mfcc.T,
        f"{name}.melfb.npy": fb64,      # [n_mels, 1 + n_fft//2], NOT transposed
    }
    meta = dict(num_samples=int(n), num_frames=int(expect_T))
    return outs, meta


def main():
    os.makedirs(OUT, exist_ok=True)
    params_out = {
        "librosa_version": librosa.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "soundfile_version": sf.__version__,
        "compute_dtype": "float64",
        "stored_dtype": "float32 (features, filterbanks); float64 (hann400)",
        "layout": "features [frames, bins]; melfb [n_mels, 1 + n_fft//2]",
        "log_offset": LOG_OFFSET,
        "db_amin": DB_AMIN,
        "sets": {},
    }
    written = {}
    for name, p in SETS.items():
        outs, meta = compute(name, p)
        for fname, arr in outs.items():
            arr32 = np.ascontiguousarray(arr, dtype=np.float32)
            np.save(os.path.join(OUT, fname), arr32)
            written[fname] = arr32
        entry = {k: p[k] for k in (
            "sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "fmin",
            "fmax", "mel_scale", "center", "n_mfcc", "clip")}
        entry.update(
            window="hann_periodic", pad_mode=p["pad_mode"], power=p["power"],
            mel_norm=p["mel_norm"], **meta)
        params_out["sets"][name] = entry

    hann = scipy.signal.get_window("hann", 400, fftbins=True).astype(np.float64)
    # periodic Hann: 0.5 - 0.5 cos(2 pi n / N), N = 400
    np.testing.assert_allclose(hann, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400),
                               rtol=0, atol=1e-15)
    np.save(os.path.join(OUT, "hann400.npy"), hann)
    written["hann400.npy"] = hann

    with open(os.path.join(OUT, "params.json"), "w") as f:
        json.dump(params_out, f, indent=2, sort_keys=False)
        f.write("\n")

    print(f"librosa {librosa.__version__}  numpy {np.__version__}  scipy {scipy.__version__}")
    for fname, a in written.items():
        size = os.path.getsize(os.path.join(OUT, fname))
        print(f"{fname:20s} {str(a.dtype):8s} {str(a.shape):12s} "
              f"min {a.min():+.6e}  max {a.max():+.6e}  ({size} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
