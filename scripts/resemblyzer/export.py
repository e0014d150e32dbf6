#!/usr/bin/python3
"""Resemblyzer's pretrained voice encoder as ONNX with its state, plus torch references.

    python3 -m pip download --no-deps resemblyzer==0.1.4 -d /tmp/rz
    (cd /tmp/rz && unzip -o -q Resemblyzer-0.1.4-py3-none-any.whl -d x)
    /usr/bin/python3 scripts/resemblyzer/export.py /tmp/rz/x/resemblyzer/pretrained.pt

Debian's python3-torch (1.13). The model is resemblyzer's VoiceEncoder
(Apache-2.0): nn.LSTM(40, 256, 3, batch_first=True) -> Linear(256, 256) ->
ReLU -> L2 norm of the last layer's final h. Exported with the state as
inputs/outputs so a stream can carry it across chunks:

    mels [1, T, 40], h0 [3, 1, 256], c0 [3, 1, 256]
      -> embed [1, 256] (of everything heard so far), hn, cn

Writes fixtures/rnn/resemblyzer.onnx and fixtures/rnn/resemblyzer_ref/:
mels.npy [200, 40] (deterministic, log-mel-like), and torch's embed after
each chunk of 50 frames, carrying (h, c) (embeds_50.npy [4, 256]), and of
the whole 200 frames in one call (embed_200.npy [1, 256]).
"""
import os
import sys

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "rnn")


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.relu = nn.ReLU()

    def forward(self, mels, h0, c0):
        _, (hn, cn) = self.lstm(mels, (h0, c0))
        raw = self.relu(self.linear(hn[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True), hn, cn


def main():
    torch.manual_seed(0)
    ckpt = torch.load(sys.argv[1], map_location="cpu")
    m = Encoder()
    missing = m.load_state_dict(ckpt["model_state"], strict=False)
    assert not missing.missing_keys, missing
    m.eval()
    rng = np.random.default_rng(7)
    t = np.arange(200)[:, None]
    mels = (0.3 * np.sin(t * 0.05 + np.arange(40)[None, :] * 0.3) + 0.1 * rng.standard_normal((200, 40))).astype(np.float32)
    mels = np.abs(mels)  # resemblyzer's mels are non-negative
    z = torch.zeros(3, 1, 256)
    onnx = os.path.join(OUT, "resemblyzer.onnx")
    torch.onnx.export(
        m, (torch.from_numpy(mels[None]), z, z), onnx,
        input_names=["mels", "h0", "c0"], output_names=["embed", "hn", "cn"],
        dynamic_axes={"mels": {1: "T"}}, opset_version=14,
    )
    ref = os.path.join(OUT, "resemblyzer_ref")
    os.makedirs(ref, exist_ok=True)
    np.save(os.path.join(ref, "mels.npy"), mels)
    with torch.no_grad():
        h, c = z, z
        embeds = []
        for k in range(0, 200, 50):
            e, h, c = m(torch.from_numpy(mels[None, k:k + 50]), h, c)
            embeds.append(e[0].numpy())
        np.save(os.path.join(ref, "embeds_50.npy"), np.stack(embeds).astype(np.float32))
        e, _, _ = m(torch.from_numpy(mels[None]), z, z)
        np.save(os.path.join(ref, "embed_200.npy"), e.numpy().astype(np.float32))
    print("wrote", onnx, os.path.getsize(onnx), "bytes")


if __name__ == "__main__":
    main()
