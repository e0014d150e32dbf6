#!/usr/bin/env python3
"""Python side of the seqrec feature-extraction speed comparison.

    python3 scripts/librosa_features.py INPUT.wav OUT.npy

Computes the "speech" parameter set log-mel spectrogram of INPUT end to end,
the way a typical librosa user would (librosa's default float32 pipeline):

    y, sr = librosa.load(INPUT, sr=None)          # soundfile backend, mono float32
    mel   = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, win_length=400,
              hop_length=160, window="hann", center=False, power=2.0,
              n_mels=40, fmin=20, fmax=7600, htk=False, norm="slaney")
    np.save(OUT, np.log(mel + 1e-6).T.astype(np.float32))   # [frames, 40]

Nothing is timed inside; time the whole process externally (e.g. hyperfine).
INPUT must already be 16 kHz (no resampling is done).
"""
import sys

import numpy as np
import librosa


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    inp, out = sys.argv[1], sys.argv[2]
    y, sr = librosa.load(inp, sr=None, mono=True)
    if sr != 16000:
        print(f"error: {inp} is {sr} Hz, expected 16000 Hz", file=sys.stderr)
        return 1
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=512, win_length=400, hop_length=160, window="hann",
        center=False, power=2.0, n_mels=40, fmin=20.0, fmax=7600.0,
        htk=False, norm="slaney")
    logmel = np.log(mel + 1e-6).T.astype(np.float32)
    np.save(out, logmel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
