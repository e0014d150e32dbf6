#!/usr/bin/env python3
"""Step 3b of the `kws` (speech-embedding) bundle: train the streaming GRU head, export ONNX.

    python3 scripts/kws/train_embed.py pack                  # numpy: shards -> embed_pack.npz (float16)
    python3 scripts/kws/train_embed.py train BUDGET_S [HIDDEN LAYERS OUT.npz] [MAX_EPOCHS]
                                                             # any torch >= 1.13; CUDA if available
    /usr/bin/python3 scripts/kws/train_embed.py export [WEIGHTS.npz]
                                                             # Debian torch 1.13: fold + ONNX export,
                                                             # then `python3 ... check` (onnxruntime)

Model: per-dimension input normalisation -> GRU(96 -> HIDDEN, LAYERS) -> Linear(HIDDEN -> 12)
-> softmax, one step per embedding (80 ms). The normalisation is folded into
the first GRU layer's input weights and biases after training (exact), so the
exported model takes the raw 96-dim embeddings.

Export (torch.onnx, opset 14), the same interface as the log-mel baseline:
forward(x [T,1,96], h0 [LAYERS,1,HIDDEN]) -> (y [T,1,12], hn [LAYERS,1,HIDDEN]),
names x, h0 -> y, hn, dynamic axis 0; written to models/kws/kws_head.onnx.

Training for streaming: the training sequences (12 s = 141 steps each, data
in target/kws_work/embed/train_*.npz) are chained into STREAMS streams, a new
random chaining each epoch; every optimiser step feeds the next sequence of
every stream, carrying the GRU state (detached), resetting a stream's state to
zero with probability P_RESET. Masked cross-entropy (steps inside a keyword
are not scored), Adam + OneCycle, grad clip 1.0, seed 5. Input dropout and a
small Gaussian input noise regularise. The number of steps is fixed by a
wall-clock budget.
"""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LABELS, IGNORE_INDEX  # noqa: E402
from embed_common import EMB_DIR, MODEL_DIR, HIDDEN, LAYERS, DIM, WORK, step_labels  # noqa: E402

ONNX_PATH = os.environ.get("KWS_HEAD", os.path.join(MODEL_DIR, "kws_head.onnx"))
STREAMS = 64
P_RESET = 0.15
MAX_LR = float(os.environ.get("KWS_MAX_LR", "5e-3"))
# KWS_INIT=weights.npz: start from a trained head (its normalisation included) instead of
# a random one: fine-tuning on added data (shards 18-23, synth_babble.py) without the
# full 47 min CPU retraining
INIT = os.environ.get("KWS_INIT")
SEED = 5
OPSET = 14
META = os.environ.get("KWS_META", os.path.join(WORK, "train_embed_meta.json"))
PACK = os.environ.get("KWS_PACK", os.path.join(WORK, "embed_pack.npz"))
WEIGHTS = os.path.join(WORK, "kws_head_weights.npz")


def stage_pack():
    shards = sorted(glob.glob(os.path.join(EMB_DIR, "train_*.npz")))
    X = np.concatenate([np.load(p)["x"] for p in shards])
    T = X.shape[1]
    # labels recomputed from the word lists (make_embed.py truth) with embed_common.step_labels
    Y = np.stack([step_labels(T, [(w["word"], w["start_s"], w["end_s"], w["kind"], w["snr_db"]) for w in ws])
                  for p in shards for ws in json.load(open(p.replace(".npz", ".json")))])
    va = np.load(os.path.join(EMB_DIR, "val.npz"))
    vy = np.stack([step_labels(T, [(w["word"], w["start_s"], w["end_s"], w["kind"]) for w in ws])
                   for ws in json.load(open(os.path.join(EMB_DIR, "val.json")))])
    share = ", ".join(f"{LABELS[c]} {np.mean(Y == c):.3f}" for c in range(len(LABELS)))
    print(f"[pack] labels: masked {np.mean(Y == IGNORE_INDEX):.3f}, {share}")
    # 8 (or 7) bits per dimension (range of the training data; step ~0.03 (0.06) sd), so the pack fits a 64 MiB transfer
    lo, hi = X.reshape(-1, DIM).min(0), X.reshape(-1, DIM).max(0)
    levels = 2 ** int(os.environ.get("KWS_PACK_BITS", "8")) - 1   # 7 for the 18-shard pack (64 MiB limit)
    sc = (hi - lo) / levels
    q = lambda a: np.clip(np.round((a - lo) / sc), 0, levels).astype(np.uint8)  # noqa: E731
    np.savez_compressed(PACK, xq=q(X), y=Y, vxq=q(va["x"][:60]), vy=vy[:60], lo=lo, sc=sc, shards=len(shards))
    print(f"[pack] {len(shards)} shards, {X.shape} -> {PACK} ({os.path.getsize(PACK) / 2**20:.1f} MiB)")


def stage_train(budget_s, hidden=HIDDEN, layers=LAYERS, out=None, max_epochs=1e9):
    import torch
    from torch import nn

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(SEED)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    HIDDEN, LAYERS = hidden, layers
    rng = np.random.default_rng(SEED)
    if os.path.exists(PACK):
        pk = np.load(PACK)
        lo, sc = pk["lo"], pk["sc"]
        X = (pk["xq"] * sc + lo).astype(np.float32)
        vx = (pk["vxq"] * sc + lo).astype(np.float32)
        Y, vy, nsh = pk["y"].astype(np.int64), pk["vy"], int(pk["shards"])
    else:
        shards = sorted(glob.glob(os.path.join(EMB_DIR, "train_*.npz")))
        X = np.concatenate([np.load(p)["x"] for p in shards])
        Y = np.concatenate([np.load(p)["y"] for p in shards]).astype(np.int64)
        va = np.load(os.path.join(EMB_DIR, "val.npz"))
        vx, vy, nsh = va["x"], va["y"], len(shards)
    S, T, F = X.shape
    mu = X.reshape(-1, F).mean(0)
    sd = X.reshape(-1, F).std(0) + 1e-3
    print(f"[train] {nsh} shards, {S} sequences x {T} steps ({S * T * 0.08 / 3600:.1f} h); GRU {LAYERS}x{HIDDEN} on {dev}", flush=True)
    Xv = torch.from_numpy(vx).transpose(0, 1).contiguous().to(dev)
    Yv = vy.astype(np.int64)
    # class weights: keywords are rare steps; mild up-weighting
    cnt = np.bincount(Y[Y >= 0], minlength=len(LABELS)).astype(np.float64)
    wts = np.ones(len(LABELS))
    wts[2:] = float(os.environ.get("KW_WEIGHT", "2.0"))
    print("[train] label share " + ", ".join(f"{LABELS[i]} {cnt[i] / cnt.sum():.3f}" for i in range(len(LABELS))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.drop = nn.Dropout(0.1)
            self.gru = nn.GRU(F, HIDDEN, LAYERS, dropout=0.1 if LAYERS > 1 else 0.0)
            self.head = nn.Linear(HIDDEN, len(LABELS))

        def forward(self, x, h0):
            z = (x - self.mu) / self.sd
            if self.training:
                z = self.drop(z + 0.1 * torch.randn_like(z))
            y, hn = self.gru(z, h0)
            return self.head(y), hn

    def val_acc(model):
        with torch.no_grad():
            lg, _ = model(Xv, torch.zeros(LAYERS, Xv.shape[1], HIDDEN, device=dev))
        pred = lg.argmax(-1).transpose(0, 1).cpu().numpy()
        m = Yv != IGNORE_INDEX
        kw = m & (Yv >= 2)
        return float((pred[m] == Yv[m]).mean()), float((pred[kw] == Yv[kw]).mean())

    net = Net().to(dev)
    if INIT:
        wz = np.load(INIT)
        net.load_state_dict({k[2:]: torch.from_numpy(wz[k]) for k in wz.files if k.startswith("w:")})
        print(f"[train] initialised from {INIT}", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=MAX_LR / 25, weight_decay=1e-4)
    lossf = nn.CrossEntropyLoss(weight=torch.tensor(wts, dtype=torch.float32, device=dev), ignore_index=IGNORE_INDEX)
    Xt = torch.from_numpy(X).to(dev)
    Yt = torch.from_numpy(Y).to(dev)
    # MAXPOOL=1: each keyword window (a run of its label) is scored once, by the
    # cross-entropy at its most confident step ("max-pooling" loss); the other
    # steps of the window are not scored. Default 0: every step scored.
    maxpool = os.environ.get("MAXPOOL", "0") == "1"
    Rn = np.zeros(Y.shape, np.int64)
    kwm = Y >= 2
    start = kwm & np.concatenate([np.ones((S, 1), bool), Y[:, 1:] != Y[:, :-1]], 1)
    Rn[kwm] = np.cumsum(start, 1)[kwm]
    Rt = torch.from_numpy(Rn).to(dev)
    per_epoch = S // STREAMS

    def batches():
        while True:
            perm = rng.permutation(S)[: per_epoch * STREAMS].reshape(-1, STREAMS)
            for row in perm:
                idx = torch.from_numpy(row).to(dev)
                yield (Xt[idx].transpose(0, 1).contiguous(), Yt[idx].transpose(0, 1).contiguous(),
                       Rt[idx].transpose(0, 1).contiguous())

    h = torch.zeros(LAYERS, STREAMS, HIDDEN, device=dev)
    gen = batches()

    def step(sched=None):
        nonlocal h
        xb, yb, rb = next(gen)
        reset = torch.from_numpy(rng.random(STREAMS) < P_RESET).to(dev)
        h = h.detach()
        h[:, reset] = 0.0
        logits, h = net(xb, h)
        if maxpool:
            ykw = yb >= 2
            loss = lossf(logits.reshape(-1, len(LABELS)), torch.where(ykw, torch.full_like(yb, IGNORE_INDEX), yb).reshape(-1))
            lp = torch.log_softmax(logits, -1).gather(-1, yb.clamp(min=0)[..., None])[..., 0]
            gid = (rb + torch.arange(rb.shape[1], device=dev)[None, :] * 1000)[ykw]
            ng = int(gid.max().item()) + 1 if gid.numel() else 0
            if ng:
                best = torch.full((ng,), -1e9, device=dev).scatter_reduce(0, gid, lp[ykw], "amax", include_self=True)
                used = torch.zeros(ng, dtype=torch.bool, device=dev).scatter(0, gid, True)
                loss = loss - float(wts[2]) * 0.2 * best[used].mean()
        else:
            loss = lossf(logits.reshape(-1, len(LABELS)), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if sched is not None:
            sched.step()
        return loss.item()

    t0 = time.time()
    for _ in range(5):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    per_step = (time.time() - t0) / 5
    total = max(10, min(int((budget_s - (time.time() - t0)) / per_step * 0.93), int(max_epochs * per_epoch)))
    print(f"[train] {per_step:.3f} s/step -> {total} steps ({total / per_epoch:.1f} epochs of "
          f"{per_epoch} steps) in a {budget_s:.0f} s budget", flush=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=total + 1, pct_start=0.1)
    tot, cnt_ = 0.0, 0
    for s in range(total):
        tot += step(sched)
        cnt_ += 1
        if (s + 1) % 200 == 0 or s == total - 1:
            net.eval()
            a, k = val_acc(net)
            net.train()
            print(f"[train] step {s + 1}/{total} loss {tot / cnt_:.4f}  val acc {a:.4f}, kw-step acc {k:.4f}"
                  f"  ({time.time() - t0:.0f} s)", flush=True)
            tot, cnt_ = 0.0, 0
    train_s = time.time() - t0
    net.eval()
    acc, kwacc = val_acc(net)
    print(f"[train] final val acc {acc:.4f}, kw-step acc {kwacc:.4f}; {total} steps in {train_s:.0f} s", flush=True)
    sd_ = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    meta = {"train_seconds": train_s, "steps": total, "epochs": total / per_epoch, "seconds_per_step": per_step,
            "budget_s": budget_s, "streams": STREAMS, "device": str(dev) + (" " + torch.cuda.get_device_name(0) if dev.type == "cuda" else ""),
            "torch_version": torch.__version__, "threads": torch.get_num_threads(), "hidden": HIDDEN, "layers": LAYERS,
            "val_step_accuracy": acc, "val_keyword_step_accuracy": kwacc, "train_sequences": int(S),
            "train_steps": int(S * T), "train_hours": S * T * 0.08 / 3600, "shards": nsh,
            "keyword_class_weight": float(wts[2]), "maxpool_loss": maxpool, "max_lr": MAX_LR,
            "init": os.path.basename(INIT) if INIT else None}
    out = out or WEIGHTS
    np.savez(out, meta=json.dumps(meta), **{"w:" + k: v for k, v in sd_.items()})
    print(f"[train] wrote {out}")


def stage_export(path=None):
    import torch
    from torch import nn
    wz = np.load(path or WEIGHTS)
    meta = json.loads(str(wz["meta"]))
    W = {k[2:]: torch.from_numpy(wz[k]) for k in wz.files if k.startswith("w:")}
    H, L = meta["hidden"], meta["layers"]
    assert (H, L) == (HIDDEN, LAYERS), "embed_common.HIDDEN/LAYERS must match the trained head"
    F = DIM

    class Export(nn.Module):
        def __init__(self, gru, head):
            super().__init__()
            self.gru, self.head = gru, head

        def forward(self, x, h0):
            y, hn = self.gru(x, h0)
            return torch.softmax(self.head(y), dim=-1), hn

    gru = nn.GRU(F, H, L)
    head = nn.Linear(H, len(LABELS))
    mu, sd = W["mu"], W["sd"]
    with torch.no_grad():
        gru.load_state_dict({k[4:]: v for k, v in W.items() if k.startswith("gru.")})
        ref = nn.GRU(F, H, L)
        ref.load_state_dict({k[4:]: v for k, v in W.items() if k.startswith("gru.")})
        w = W["gru.weight_ih_l0"]
        gru.weight_ih_l0.copy_(w / sd)
        gru.bias_ih_l0.copy_(W["gru.bias_ih_l0"] - w @ (mu / sd))
        head.load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
    exp = Export(gru, head).eval()
    va = np.load(os.path.join(EMB_DIR, "val.npz"))
    x = torch.from_numpy(va["x"][0])[:, None, :]
    with torch.no_grad():
        h0 = torch.zeros(L, 1, H)
        p_fold, _ = exp(x, h0)
        y_ref, _ = ref((x - mu) / sd, h0)
        p_ref = torch.softmax(head(y_ref), -1)
        dfold = (p_ref - p_fold).abs().max().item()
    assert dfold < 1e-4, dfold
    np.save(os.path.join(WORK, "val0_embed.torch_post.npy"), p_fold[:, 0].numpy())
    os.makedirs(MODEL_DIR, exist_ok=True)
    torch.onnx.export(exp, (torch.zeros(5, 1, F), torch.zeros(L, 1, H)), ONNX_PATH,
                      opset_version=OPSET, input_names=["x", "h0"], output_names=["y", "hn"],
                      dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, do_constant_folding=True)
    import onnx
    m = onnx.load(ONNX_PATH)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    print(f"[export] fold check max|diff| {dfold:.1e}; exported {ONNX_PATH}: ops {ops}")
    meta.update(export_torch_version=torch.__version__, onnx_version=onnx.__version__, ops=ops, fold_max_abs=dfold,
                params=int(sum(p.numel() for p in exp.parameters())), opset=OPSET)
    with open(META, "w") as fh:
        json.dump(meta, fh, indent=2)
    subprocess.run([os.environ.get("NP_PY", "python3"), os.path.abspath(__file__), "check"], check=True)


def stage_check():
    import onnxruntime as ort
    sess = ort.InferenceSession(ONNX_PATH, providers=["CPUExecutionProvider"])
    x = np.load(os.path.join(EMB_DIR, "val.npz"))["x"][0]

    def run(x, h0=None):
        h0 = np.zeros((LAYERS, 1, HIDDEN), np.float32) if h0 is None else h0
        y, hn = sess.run(["y", "hn"], {"x": np.asarray(x, np.float32)[:, None, :], "h0": h0})
        return y[:, 0, :], hn

    whole, _ = run(x)
    dt = float(np.abs(whole - np.load(os.path.join(WORK, "val0_embed.torch_post.npy"))).max())
    parts, h = [], None
    for a in range(0, len(x), 7):
        p, h = run(x[a:a + 7], h)
        parts.append(p)
    dc = float(np.abs(np.concatenate(parts) - whole).max())
    print(f"[check] ORT vs torch max|diff| {dt:.2e}; ORT chunked(7, hn->h0) vs whole {dc:.2e}")
    assert dt <= 1e-4 and dc <= 1e-5
    meta = json.load(open(META))
    meta.update(ort_vs_torch_max_abs=dt, ort_chunked_vs_whole_max_abs=dc, onnxruntime=ort.__version__)
    json.dump(meta, open(META, "w"), indent=2)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "check":
        stage_check()
    elif cmd == "pack":
        stage_pack()
    elif cmd == "export":
        stage_export(sys.argv[2] if len(sys.argv) > 2 else None)
    else:
        a = sys.argv[2:]
        stage_train(float(a[0]) if a else 1200.0, int(a[1]) if len(a) > 1 else HIDDEN,
                    int(a[2]) if len(a) > 2 else LAYERS, a[3] if len(a) > 3 else None,
                    float(a[4]) if len(a) > 4 else 1e9)
