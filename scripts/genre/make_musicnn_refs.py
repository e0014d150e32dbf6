"""References for tests/genre.rs: musicnn's input and MSD musicnn outputs on
fixtures/genre/bach_16k.wav.

    /work/venv-tf/bin/python scripts/genre/make_musicnn_refs.py

(any Python with numpy, soundfile, librosa >= 0.10 and onnxruntime). Writes
fixtures/genre/bach.mel_zeros.npy ([frames, 96]: librosa melspectrogram,
n_fft 512, hop 256, 96 Slaney mels 0-8000 Hz, centred with zero padding,
power 2, computed in float64, then log10(1 + 10000 x), cast to float32) and
bach.onnx_msd.{taggram,penultimate}.npy (models/genre/musicnn_msd.onnx on
windows [62 j, 62 j + 187) of those frames, every full window).
"""
import json

import librosa
import numpy as np
import onnxruntime as ort
import soundfile as sf

CLIP = "fixtures/genre/bach_16k.wav"
y, sr = sf.read(CLIP, dtype="float32")
assert sr == 16000 and y.ndim == 1
mel = librosa.feature.melspectrogram(
    y=y.astype(np.float64), sr=16000, n_fft=512, hop_length=256, n_mels=96
).T
x = np.ascontiguousarray(np.log10(1 + 10000 * mel), dtype=np.float32)
np.save("fixtures/genre/bach.mel_zeros.npy", x)

sess = ort.InferenceSession("models/genre/musicnn_msd.onnx", providers=["CPUExecutionProvider"])
n = (len(x) - 187) // 62 + 1
windows = np.stack([x[62 * j : 62 * j + 187] for j in range(n)])
tag, pen = sess.run(["taggram", "penultimate"], {"melspec": windows})
np.save("fixtures/genre/bach.onnx_msd.taggram.npy", tag.astype(np.float32))
np.save("fixtures/genre/bach.onnx_msd.penultimate.npy", pen.astype(np.float32))
print(json.dumps({"frames": x.shape, "windows": n, "librosa": librosa.__version__,
                  "onnxruntime": ort.__version__}))
