#!/usr/bin/env python3
"""Worked example: turn your own PyTorch CNN + LSTM video model into a seqrec
bundle.

    /usr/bin/python3 scripts/video/export_user_model.py OUT_DIR      # torch (+ onnx) only
    python3 scripts/video/export_user_model.py --verify OUT_DIR      # optional: onnxruntime check

The first command builds a small toy model (no torchvision), writes

    OUT_DIR/cnn_features.onnx   image [N, 3, H, W] -> features [N, F]   (dynamic N)
    OUT_DIR/head.onnx           x [T, 1, F], h0, c0 -> probs [T, 1, K], hn, cn   (dynamic T)
    OUT_DIR/bundle.toml
    OUT_DIR/reference.npz       a random clip, its preprocessed frames and the
                                original model's per-frame probabilities

and checks with torch that the two exported halves, run frame by frame with
the state carried, give the original model's output. `--verify` (needs
onnxruntime, e.g. the pyenv python) runs the two ONNX files the way seqrec
does (CNN per frame, head in chunks with hn/cn fed back) and compares with
reference.npz. Then:

    seqrec batch my_videos/ --bundle OUT_DIR

How seqrec runs a video bundle (so you know what to export):
  1. frames are decoded as RGB, decimated to at most [video] fps;
  2. each frame is resized (resize = "crop": shorter side to the target,
     centre crop; "stretch": both axes) with an antialiased bilinear filter
     to [video] width x height, converted to float (v - mean) / std with v in
     0..255 (see scripts/video/preprocess.py, the exact reference);
  3. the [embedder] ONNX maps a batch [N, 3, H, W] to [N, F];
  4. the [sequence] ONNX maps [T, 1, F] (+ state) to per-frame scores
     [T, 1, K], the state outputs fed back into the state inputs;
  5. [decision] turns the scores into events.

Adapting your model: the points that usually need care are marked
"YOUR MODEL" below. In short:
  * split the model at the per-frame feature vector: everything per frame
    (CNN + pooling) goes into the embedder, everything across time into the
    sequence head;
  * normalisation: if you trained on x/255 then torchvision's Normalize(mean,
    std), use mean = 255*mean and std = 255*std in bundle.toml (done below);
    or fold any other per-pixel transform into the CNN export;
  * the LSTM must see [T, batch=1, F] (batch_first=False); a batch_first
    model is re-wrapped (shown below: the weights are the same);
  * put the softmax (or sigmoid for multi-label) inside the head: the
    decision thresholds act on probabilities;
  * backend = "native" runs LSTM/GRU/RNN stacks + Linear + Softmax/Sigmoid
    with seqrec's own kernels; anything else in the head needs
    backend = "ort" (ONNX Runtime runs any stateful model).
"""
import argparse
import json
import os
import sys

FEAT = 64        # feature size of the toy CNN
HIDDEN = 32
LABELS = ["background", "wave", "clap"]
SIZE = 112       # input size of the toy CNN (YOUR MODEL: e.g. 224)
# YOUR MODEL: the normalisation used in training. torchvision-style mean/std
# on 0..1 pixels -> multiply by 255 for bundle.toml.
MEAN01 = (0.485, 0.456, 0.406)
STD01 = (0.229, 0.224, 0.225)


def build_user_model():
    """A stand-in for 'your model': per-frame CNN -> LSTM (batch_first) -> Linear."""
    import torch
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, FEAT, 3, stride=2, padding=1), nn.BatchNorm2d(FEAT), nn.ReLU(),
            )

        def forward(self, x):                         # [N, 3, H, W] normalised
            return self.body(x).mean((2, 3))          # global average pool -> [N, FEAT]

    class ActionModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = TinyCNN()
            self.lstm = nn.LSTM(FEAT, HIDDEN, num_layers=1, batch_first=True)
            self.fc = nn.Linear(HIDDEN, len(LABELS))

        def forward(self, clip):                      # [B, T, 3, H, W] -> logits [B, T, K]
            B, T = clip.shape[:2]
            f = self.cnn(clip.flatten(0, 1)).view(B, T, -1)
            y, _ = self.lstm(f)
            return self.fc(y)

    torch.manual_seed(0)
    m = ActionModel()
    # YOUR MODEL: m.load_state_dict(torch.load("my_action_model.pt"))
    # give the BatchNorms non-trivial statistics so the check means something
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


class Head:
    """The sequence half, as seqrec wants it: (x [T,1,F], h0, c0) -> (probs, hn, cn)."""

    @staticmethod
    def build(user):
        import torch
        from torch import nn

        class H(nn.Module):
            def __init__(self):
                super().__init__()
                src = user.lstm
                # re-wrap batch_first=True as batch_first=False: same weights
                self.lstm = nn.LSTM(src.input_size, src.hidden_size, src.num_layers, batch_first=False)
                self.lstm.load_state_dict(src.state_dict())
                self.fc = user.fc

            def forward(self, x, h0, c0):
                y, (hn, cn) = self.lstm(x, (h0, c0))
                return torch.softmax(self.fc(y), dim=-1), hn, cn

        return H().eval()


def export(out):
    import numpy as np
    import torch
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    user = build_user_model()
    layers, hid = user.lstm.num_layers, user.lstm.hidden_size

    # 1. the CNN: dynamic batch
    cnn_path = os.path.join(out, "cnn_features.onnx")
    torch.onnx.export(user.cnn, torch.zeros(2, 3, SIZE, SIZE), cnn_path, opset_version=14,
                      input_names=["image"], output_names=["features"],
                      dynamic_axes={"image": {0: "N"}, "features": {0: "N"}})
    # 2. the head: dynamic time, state in and out
    head = Head.build(user)
    head_path = os.path.join(out, "head.onnx")
    z = torch.zeros(layers, 1, hid)
    torch.onnx.export(head, (torch.zeros(5, 1, FEAT), z, z), head_path, opset_version=14,
                      input_names=["x", "h0", "c0"], output_names=["probs", "hn", "cn"],
                      dynamic_axes={"x": {0: "T"}, "probs": {0: "T"}})

    # 3. check in torch: the halves, frame by frame with the state carried, = the whole model
    g = torch.Generator().manual_seed(1)
    clip_u8 = torch.randint(0, 256, (12, SIZE, SIZE, 3), generator=g, dtype=torch.uint8)
    mean = torch.tensor(MEAN01) * 255
    std = torch.tensor(STD01) * 255
    frames = ((clip_u8.float() - mean) / std).permute(0, 3, 1, 2).contiguous()   # [T, 3, H, W]
    with torch.no_grad():
        ref = torch.softmax(user(frames[None]), -1)[0]                           # [T, K]
        h, c, outs = z, z, []
        for t in range(frames.shape[0]):
            f = user.cnn(frames[t:t + 1])                                       # [1, F]
            p, h, c = head(f[:, None], h, c)                                    # x [1, 1, F]
            outs.append(p[:, 0])
        got = torch.cat(outs)
    d = (got - ref).abs().max().item()
    print(f"torch: exported halves, frame by frame, vs the whole model: max|diff| {d:.2e}")
    assert d < 1e-5
    np.savez(os.path.join(out, "reference.npz"), rgb=clip_u8.numpy(), frames=frames.numpy(),
             probs=ref.numpy())

    # 4. the manifest
    fmt = lambda v: "[" + ", ".join(f"{x:.4f}" for x in v) + "]"
    toml = f'''# Example bundle written by scripts/video/export_user_model.py (toy, random weights)
name = "my-action"
description = "Example: a user's CNN + LSTM action model exported for seqrec"
kind = "video"
labels = [{", ".join(f'"{l}"' for l in LABELS)}]     # the order of the head's outputs

[video]
width = {SIZE}
height = {SIZE}
resize = "crop"          # shorter side to {SIZE}, centre crop ("stretch" to squash instead)
mean = {fmt(255 * np.asarray(MEAN01))}    # 255 x torchvision mean: seqrec's pixels are 0..255
std = {fmt(255 * np.asarray(STD01))}
fps = 15.0               # frames are decimated to at most this rate (use your training rate)

[embedder]
onnx = "cnn_features.onnx"
window = 1
step = 1

[sequence]
onnx = "head.onnx"
backend = "native"
state = [["h0", "hn"], ["c0", "cn"]]

[decision]
smoothing_s = 0.3
threshold = 0.6
off_threshold = 0.4
min_duration_s = 0.5
ignore = ["background"]
'''
    with open(os.path.join(out, "bundle.toml"), "w") as fh:
        fh.write(toml)
    for f in ("cnn_features.onnx", "head.onnx", "bundle.toml", "reference.npz"):
        print(f"wrote {os.path.join(out, f)} ({os.path.getsize(os.path.join(out, f))} bytes)")
    try:
        import onnx
        for p in (cnn_path, head_path):
            onnx.checker.check_model(onnx.load(p))
        print("onnx.checker: ok")
    except ImportError:
        pass


def verify(out):
    """Run the exported files as seqrec does (per-frame CNN in batches; the
    head in chunks, state carried) and compare with the torch reference."""
    import numpy as np
    import onnxruntime as ort
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    ref = np.load(os.path.join(out, "reference.npz"))
    cnn = ort.InferenceSession(os.path.join(out, "cnn_features.onnx"), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(os.path.join(out, "head.onnx"), providers=["CPUExecutionProvider"])
    try:   # the frames are already SIZE x SIZE, so preprocess.py only normalises them
        from preprocess import preprocess
        frames = np.stack([preprocess(f, SIZE, SIZE, "crop", 255 * np.asarray(MEAN01), 255 * np.asarray(STD01))
                           for f in ref["rgb"]])
        print(f"preprocess.py vs the torch normalisation: max|diff| {np.abs(frames - ref['frames']).max():.2e}")
    except ImportError:
        frames = ref["frames"]
    feats = np.concatenate([cnn.run(["features"], {"image": frames[a:a + 5]})[0] for a in range(0, len(frames), 5)])
    h = c = np.zeros((1, 1, HIDDEN), np.float32)
    outs = []
    for a in range(0, len(feats), 4):
        p, h, c = head.run(["probs", "hn", "cn"], {"x": feats[a:a + 4, None], "h0": h, "c0": c})
        outs.append(p[:, 0])
    d = np.abs(np.concatenate(outs) - ref["probs"]).max()
    print(f"onnxruntime (CNN batches of 5, head chunks of 4) vs torch: max|diff| {d:.2e}")
    assert d < 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("out", help="output directory (the bundle)")
    ap.add_argument("--verify", action="store_true", help="check an exported bundle with onnxruntime")
    a = ap.parse_args()
    if a.verify:
        verify(a.out)
    else:
        export(a.out)


if __name__ == "__main__":
    main()
