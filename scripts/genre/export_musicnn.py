#!/usr/bin/env python3
"""Export the pretrained musicnn (PyPI musicnn==0.1.0, ISC) taggers to ONNX.

Environment (outside the repo):
    python3 -m venv /work/venv-tf          # python 3.11 (pyenv 3.11.7)
    /work/venv-tf/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.17.0 numpy==1.26.4 \
        onnx==1.16.2 onnxruntime==1.31.1 soundfile librosa resampy music21
    /work/venv-tf/bin/pip install --no-deps musicnn==0.1.0
    (librosa 0.11.0, soxr 1.1.0, resampy 0.4.3, music21 10.5.1, soundfile 0.14.0 were resolved)

Run:
    nice /work/venv-tf/bin/python scripts/genre/export_musicnn.py [--verify-audio file.ogg ...]

What it does: rebuilds the graph with musicnn's own models.define_model in inference
mode (is_training=False) under tf.compat.v1 graph mode, input placeholder
[None,187,96] float32, restores the checkpoint shipped in the wheel
(musicnn/MSD_musicnn/, musicnn/MTT_musicnn/), freezes it and converts with tf2onnx
(opset 13).

ONNX interface (both models):
    input  melspec     float32 [N,187,96]  log10(10000*mel+1), frames x mel bands
    output taggram     float32 [N,50]      sigmoid(logits), tag order in musicnn_tags.json
    output penultimate float32 [N,200]     batch-normalised output of the 200-unit ReLU dense layer (musicnn "penultimate")
    output mean_pool   float32 [N,753]     temporal mean of the mid-end features
    output max_pool    float32 [N,753]     temporal max of the mid-end features
"""
import argparse, json, os, sys
import numpy as np
import tensorflow as tf

tf.compat.v1.disable_eager_execution()
from musicnn import models, configuration as config  # noqa: E402
import musicnn  # noqa: E402

N_FRAMES, N_MELS = 187, 96
OUTS = ["taggram", "penultimate", "mean_pool", "max_pool"]
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build(model):
    """Returns (graph, session, input tensor, dict name->tensor) with the checkpoint restored."""
    g = tf.Graph()
    with g.as_default():
        labels = config.MSD_LABELS if "MSD" in model else config.MTT_LABELS
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS], name="melspec")
        y, timbral, temporal, cnn1, cnn2, cnn3, mean_pool, max_pool, penultimate = \
            models.define_model(x, False, model, len(labels))
        outs = {
            "taggram": tf.identity(tf.nn.sigmoid(y), name="taggram"),
            "penultimate": tf.identity(penultimate, name="penultimate"),
            "mean_pool": tf.identity(mean_pool, name="mean_pool"),
            "max_pool": tf.identity(max_pool, name="max_pool"),
        }
        sess = tf.compat.v1.Session(graph=g)
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
    return g, sess, x, outs, labels


def export(model, path):
    import tf2onnx
    g, sess, x, outs, labels = build(model)
    with g.as_default():
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, g.as_graph_def(), OUTS)
    tf.compat.v1.reset_default_graph()
    with tf.Graph().as_default() as g2:
        tf.import_graph_def(frozen, name="")
    model_proto, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["melspec:0"], output_names=[o + ":0" for o in OUTS],
        opset=13, output_path=None)
    import onnx
    # clean names: strip ':0'
    rename = {"melspec:0": "melspec", **{o + ":0": o for o in OUTS}}
    for n in model_proto.graph.node:
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    for v in list(model_proto.graph.input) + list(model_proto.graph.output):
        v.name = rename.get(v.name, v.name)
    model_proto.doc_string = f"musicnn 0.1.0 {model} (ISC, MTG-UPF / Jordi Pons), exported by scripts/genre/export_musicnn.py"
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, path)
    return sess, x, outs, labels


def mel_windows(path, hop=62, f16=True):
    import librosa
    y, sr = librosa.load(path, sr=16000)
    m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, hop_length=256, n_mels=96).T
    if f16:
        m = m.astype(np.float16)
    m = np.log10(10000 * m + 1).astype(np.float32)
    idx = range(0, m.shape[0] - N_FRAMES + 1, hop)
    return np.stack([m[i:i + N_FRAMES] for i in idx])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--verify-audio", nargs="*", default=[])
    ap.add_argument("--outdir", default=os.path.join(REPO, "models", "genre"))
    a = ap.parse_args()
    import onnxruntime as ort
    tags, report = {}, {}
    for model, fname in [("MSD_musicnn", "musicnn_msd.onnx"), ("MTT_musicnn", "musicnn_mtt.onnx")]:
        path = os.path.join(a.outdir, fname)
        sess, x, outs, labels = export(model, path)
        tags[model] = list(labels)
        rs = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        print(model, "->", path, os.path.getsize(path), "bytes")
        print("  inputs ", [(i.name, i.shape) for i in rs.get_inputs()])
        print("  outputs", [(o.name, o.shape) for o in rs.get_outputs()])
        rng = np.random.default_rng(0)
        batches = [("random", rng.uniform(0, 3, (4, N_FRAMES, N_MELS)).astype(np.float32))]
        for f in a.verify_audio:
            batches.append((os.path.basename(f), mel_windows(f)))
        report[model] = {}
        for name, b in batches:
            tf_out = sess.run([outs[o] for o in OUTS], feed_dict={x: b})
            on_out = rs.run(OUTS, {"melspec": b})
            d = {o: float(np.max(np.abs(t - u))) for o, t, u in zip(OUTS, tf_out, on_out)}
            report[model][name] = {"windows": int(b.shape[0]), **d}
            print(f"  {name:40s} N={b.shape[0]:4d} " + " ".join(f"{o}={v:.3g}" for o, v in d.items()))
        sess.close()
    with open(os.path.join(a.outdir, "musicnn_tags.json"), "w") as fh:
        json.dump({"MSD_musicnn": tags["MSD_musicnn"], "MTT_musicnn": tags["MTT_musicnn"]}, fh, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
