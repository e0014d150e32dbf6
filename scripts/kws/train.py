#!/usr/bin/env python3
"""Step 3 of the kws bundle: train the streaming GRU, export ONNX, check it.

    /usr/bin/python3 scripts/kws/train.py [BUDGET_S]   # Debian python3-torch 1.13, python3-onnx; 1 thread
    python3          scripts/kws/train.py check        # pyenv python: onnxruntime (run automatically at the end)

Model: per-bin input normalisation -> GRU(40 -> 128, 2 layers) -> Linear(128 -> 12)
-> softmax. After training the normalisation is folded into the first GRU
layer's input weights and biases (exact: W (x - mu)/sd + b = (W/sd) x + (b - W mu/sd)),
so the exported model takes raw log-mel.

Export (torch.onnx, opset 14): forward(x [T,1,40], h0 [2,1,128]) -> (y [T,1,12], hn [2,1,128]),
names x, h0 -> y, hn, dynamic axis 0 of x and y; written to models/kws/kws.onnx.

Training "for streaming": the 5000 training sequences (8 s each) are chained
into 32 streams (a new random chaining every epoch); every step takes the next
400- or 397-frame chunk of each of the 32 streams, carrying the hidden state
from chunk to chunk (detached) and resetting each stream's state to zero with
probability 0.2 per chunk. Cross-entropy per frame with the masked frames
(label -1, inside keywords) left out; Adam + OneCycle (max lr 4e-3), gradient
clip 1.0, seed 5. The number of steps is fixed by a wall-clock budget
(default 1500 s): 3 warm-up steps are timed, then
steps = budget / (time per step).

The "check" stage (onnxruntime): ORT vs torch posteriors on a validation
sequence, and ORT fed in chunks of 7 frames (carrying hn -> h0) vs one call.
"""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import WORK, MODEL_DIR, LABELS, HIDDEN, LAYERS, IGNORE_INDEX  # noqa: E402

DATA = os.path.join(WORK, "data")
ONNX_PATH = os.path.join(MODEL_DIR, "kws.onnx")
STREAMS = 32
CHUNKS = ((0, 400), (400, 797))
P_RESET = 0.2
MAX_LR = 4e-3
SEED = 5
OPSET = 14


def stage_train(budget_s):
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    shards = sorted(glob.glob(os.path.join(DATA, "train_*.npz")))
    X = np.concatenate([np.load(p)["x"] for p in shards])
    Y = np.concatenate([np.load(p)["y"] for p in shards]).astype(np.int64)
    S, T, F = X.shape
    mu = X.reshape(-1, F).mean(0)
    sd = X.reshape(-1, F).std(0) + 1e-3
    print(f"[train] {len(shards)} shards, {S} sequences x {T} frames ({S * T / 360000:.1f} h)", flush=True)
    va = np.load(os.path.join(DATA, "val.npz"))
    Xv = torch.from_numpy(va["x"]).transpose(0, 1).contiguous()
    Yv = va["y"].astype(np.int64)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.gru = nn.GRU(F, HIDDEN, LAYERS)
            self.head = nn.Linear(HIDDEN, len(LABELS))

        def forward(self, x, h0):
            y, hn = self.gru((x - self.mu) / self.sd, h0)
            return self.head(y), hn

    class Export(nn.Module):
        def __init__(self, gru, head):
            super().__init__()
            self.gru, self.head = gru, head

        def forward(self, x, h0):
            y, hn = self.gru(x, h0)
            return torch.softmax(self.head(y), dim=-1), hn

    def val_acc(model):
        with torch.no_grad():
            lg, _ = model(Xv, torch.zeros(LAYERS, Xv.shape[1], HIDDEN))
        pred = lg.argmax(-1).transpose(0, 1).numpy()
        m = Yv != IGNORE_INDEX
        kw = m & (Yv >= 2)
        return float((pred[m] == Yv[m]).mean()), float((pred[kw] == Yv[kw]).mean())

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=MAX_LR / 25)
    lossf = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    Xt = torch.from_numpy(X)
    Yt = torch.from_numpy(Y)
    per_epoch = (S // STREAMS) * len(CHUNKS)

    def batches():
        while True:
            perm = rng.permutation(S)[: (S // STREAMS) * STREAMS].reshape(-1, STREAMS)
            for row in perm:
                idx = torch.from_numpy(row)
                for a, b in CHUNKS:
                    yield (Xt[idx, a:b].transpose(0, 1).contiguous(),
                           Yt[idx, a:b].transpose(0, 1).contiguous(), a == 0)

    h = torch.zeros(LAYERS, STREAMS, HIDDEN)
    gen = batches()

    def step(sched=None):
        nonlocal h
        xb, yb, _ = next(gen)
        reset = torch.from_numpy(rng.random(STREAMS) < P_RESET)
        h = h.detach()
        h[:, reset] = 0.0
        logits, h = net(xb, h)
        loss = lossf(logits.reshape(-1, len(LABELS)), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if sched is not None:
            sched.step()
        return loss.item()

    t0 = time.time()
    for _ in range(3):
        step()
    per_step = (time.time() - t0) / 3
    total = max(10, int((budget_s - (time.time() - t0)) / per_step))
    print(f"[train] {per_step:.2f} s/step -> {total} steps ({total / per_epoch:.2f} epochs of "
          f"{per_epoch} steps) in a {budget_s:.0f} s budget", flush=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=total + 1, pct_start=0.1)
    tot, cnt = 0.0, 0
    for s in range(total):
        tot += step(sched)
        cnt += 1
        if (s + 1) % 50 == 0 or s == total - 1:
            msg = f"[train] step {s + 1}/{total} loss {tot / cnt:.4f}"
            if (s + 1) % 150 == 0 or s == total - 1:
                net.eval()
                a, k = val_acc(net)
                net.train()
                msg += f"  val frame acc {a:.4f}, keyword-frame acc {k:.4f}"
            print(msg + f"  ({time.time() - t0:.0f} s)", flush=True)
            tot, cnt = 0.0, 0
    train_s = time.time() - t0
    net.eval()

    gru = nn.GRU(F, HIDDEN, LAYERS)
    head = nn.Linear(HIDDEN, len(LABELS))
    with torch.no_grad():
        gru.load_state_dict(net.gru.state_dict())
        w = net.gru.weight_ih_l0
        gru.weight_ih_l0.copy_(w / net.sd)
        gru.bias_ih_l0.copy_(net.gru.bias_ih_l0 - w @ (net.mu / net.sd))
        head.load_state_dict(net.head.state_dict())
    exp = Export(gru, head).eval()
    with torch.no_grad():
        x = Xv[:, :1]
        h0 = torch.zeros(LAYERS, 1, HIDDEN)
        p_fold, _ = exp(x, h0)
        lg, _ = net(x, h0)
        dfold = (torch.softmax(lg, -1) - p_fold).abs().max().item()
    assert dfold < 1e-4, dfold
    np.save(os.path.join(WORK, "val0.torch_post.npy"), p_fold[:, 0].numpy())
    acc, kwacc = val_acc(net)
    print(f"[train] fold check max|diff| {dfold:.1e}; val frame acc {acc:.4f}, keyword-frame acc {kwacc:.4f}")

    os.makedirs(MODEL_DIR, exist_ok=True)
    torch.onnx.export(exp, (torch.zeros(5, 1, F), torch.zeros(LAYERS, 1, HIDDEN)), ONNX_PATH,
                      opset_version=OPSET, input_names=["x", "h0"], output_names=["y", "hn"],
                      dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, do_constant_folding=True)
    import onnx
    m = onnx.load(ONNX_PATH)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    print(f"[train] exported {ONNX_PATH}: ops {ops}")
    with open(os.path.join(WORK, "train_meta.json"), "w") as fh:
        json.dump({"train_seconds": train_s, "steps": total, "epochs": total / per_epoch,
                   "seconds_per_step": per_step, "budget_s": budget_s,
                   "torch_version": torch.__version__, "onnx_version": onnx.__version__,
                   "threads": torch.get_num_threads(), "ops": ops,
                   "val_frame_accuracy": acc, "val_keyword_frame_accuracy": kwacc,
                   "train_sequences": int(S), "train_frames": int(S * T),
                   "params": int(sum(p.numel() for p in exp.parameters()))}, fh, indent=2)
    print(f"[train] training took {train_s:.0f} s ({total} steps)", flush=True)
    subprocess.run([os.environ.get("NP_PY", "python3"), os.path.abspath(__file__), "check"], check=True)


def stage_check():
    import onnxruntime as ort
    sess = ort.InferenceSession(ONNX_PATH, providers=["CPUExecutionProvider"])
    x = np.load(os.path.join(DATA, "val.npz"))["x"][0]

    def run(x, h0=None):
        h0 = np.zeros((LAYERS, 1, HIDDEN), np.float32) if h0 is None else h0
        y, hn = sess.run(["y", "hn"], {"x": np.asarray(x, np.float32)[:, None, :], "h0": h0})
        return y[:, 0, :], hn

    whole, _ = run(x)
    dt = float(np.abs(whole - np.load(os.path.join(WORK, "val0.torch_post.npy"))).max())
    parts, h = [], None
    for a in range(0, len(x), 7):
        p, h = run(x[a:a + 7], h)
        parts.append(p)
    dc = float(np.abs(np.concatenate(parts) - whole).max())
    print(f"[check] ORT vs torch max|diff| {dt:.2e}; ORT chunked(7, hn->h0) vs whole {dc:.2e}")
    assert dt <= 1e-4 and dc <= 1e-5
    meta_p = os.path.join(WORK, "train_meta.json")
    meta = json.load(open(meta_p))
    meta.update(ort_vs_torch_max_abs=dt, ort_chunked_vs_whole_max_abs=dc, onnxruntime=ort.__version__)
    json.dump(meta, open(meta_p, "w"), indent=2)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        stage_check()
    else:
        stage_train(float(sys.argv[1]) if len(sys.argv) > 1 else 1500.0)
