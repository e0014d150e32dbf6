#!/usr/bin/env python3
"""Train, export and evaluate the genre head: a GRU over musicnn (MSD) window embeddings.

    nice /work/venv-genre/bin/python scripts/genre/render.py all      # audio (not shipped)
    nice /work/venv-genre/bin/python scripts/genre/train_head.py embed  # musicnn over every track
    nice /work/venv-genre/bin/python scripts/genre/train_head.py select # taggram vs penultimate on val
    nice /work/venv-genre/bin/python scripts/genre/train_head.py train export eval

The venv: /usr/bin/python3 -m venv --system-site-packages (Debian python3-torch 1.13), then
pip install librosa==0.11.0 onnxruntime music21 soundfile mido "numpy<2".

Why these choices:
* The front end is the bundle's (models/musicnn/bundle.toml): librosa mel, centred with zero
  padding, log10(1 + 10000 mel); windows of 187 frames every 62 frames (one head step per 0.992 s).
  tests/genre.rs pins seqrec's front end and embedder to the same computation.
* The head is trained for STREAMS, not files: each training sequence is 1-4 segments cut from
  random training tracks, starting anywhere inside a track, with genre switches between segments.
  The loss ignores the first SWITCH_GRACE steps after a switch (the 3 s window still hears the
  previous track) so the head learns to follow, not to guess.
* Everything is chosen on the validation split (sources never seen in training); the test split
  (other sources again) is only read by `eval`.
"""
import glob
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(ROOT, "target", "genre_work")
AUD = os.path.join(WORK, "audio")
EMB = os.path.join(WORK, "emb")
MODEL_DIR = os.path.join(ROOT, "models", "genre")
MUSICNN = os.path.join(MODEL_DIR, "musicnn_msd.onnx")
HEAD = os.path.join(MODEL_DIR, "genre_head.onnx")
WEIGHTS = os.path.join(WORK, "head_weights.npz")
METRICS = os.path.join(MODEL_DIR, "metrics.json")
LABELS = ["classical", "electronic", "rock", "jazz", "blues", "country", "latin"]
SR, HOP, WIN, STEP = 16000, 256, 187, 62
STEP_S = STEP * HOP / SR
HIDDEN = int(os.environ.get("GENRE_HIDDEN", "64"))
SWITCH_GRACE = 2
OPSET = 14
SEED = 0


def step_time(j):
    """Seconds of audio heard when step j is emitted (its window's last frame is centred there)."""
    return (STEP * j + WIN - 1) * HOP / SR


# ---------------------------------------------------------------- embed
def frontend(y):
    import librosa
    mel = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=SR, n_fft=512, hop_length=HOP, n_mels=96).T
    return np.log10(1 + 10000 * mel).astype(np.float32)


_SESS = None


def musicnn(y):
    """[steps, 50] taggram and [steps, 200] penultimate of a 16 kHz signal."""
    global _SESS
    import onnxruntime as ort
    if _SESS is None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        _SESS = ort.InferenceSession(MUSICNN, so, providers=["CPUExecutionProvider"])
    x = frontend(y)
    n = (len(x) - WIN) // STEP + 1
    if n <= 0:
        return np.zeros((0, 50), np.float32), np.zeros((0, 200), np.float32)
    # one window per run: faster than a batch here (measured 38 vs 61 ms/window, 1 thread)
    outs = [_SESS.run(["taggram", "penultimate"], {"melspec": x[None, STEP * j: STEP * j + WIN]}) for j in range(n)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def index():
    items = []
    for f in sorted(glob.glob(os.path.join(AUD, "index_*.json"))):
        items += json.load(open(f))
    return items


def stage_embed():
    import soundfile as sf
    items = index()
    os.makedirs(EMB, exist_ok=True)
    # GENRE_SHARD=i/n: fill the cache for every n-th track only (run n of them at once, then once
    # without GENRE_SHARD to collect).
    shard = os.environ.get("GENRE_SHARD")
    if shard:
        i, n = map(int, shard.split("/"))
        for k, it in enumerate(items):
            cache = os.path.join(EMB, "cache", os.path.basename(it["path"])[:-4] + ".npz")
            if k % n == i and not os.path.exists(cache) and os.path.exists(it["path"]):
                y, sr = sf.read(it["path"], dtype="float32")
                t, p = musicnn(y)
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                np.savez(cache + ".tmp.npz", tag=t, pen=p)
                os.replace(cache + ".tmp.npz", cache)
        return
    for split in ("train", "val", "test"):
        its = [it for it in items if it["split"] == split]
        tags, pens, meta = [], [], []
        for k, it in enumerate(its):
            cache = os.path.join(EMB, "cache", os.path.basename(it["path"])[:-4] + ".npz")
            if os.path.exists(cache):
                z = np.load(cache)
                t, p = z["tag"], z["pen"]
            else:
                y, sr = sf.read(it["path"], dtype="float32")
                assert sr == SR, it["path"]
                t, p = musicnn(y)
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                np.savez(cache + ".tmp.npz", tag=t, pen=p)
                os.replace(cache + ".tmp.npz", cache)
            tags.append(t)
            pens.append(p)
            meta.append(dict(it, path=os.path.relpath(it["path"], ROOT), steps=len(t)))
            if k % 50 == 0:
                print(f"[embed] {split} {k}/{len(its)}", flush=True)
        np.savez(os.path.join(EMB, f"{split}.npz"), tag=np.array(tags, dtype=object),
                 pen=np.array(pens, dtype=object), meta=json.dumps(meta))
        print(f"[embed] {split}: {len(its)} tracks", flush=True)


def pick(data, feat):
    """The head's input per track: musicnn's `tag` (50 sigmoid MSD tags), `pen` (200-d penultimate)
    or `both` (the two concatenated, tags first)."""
    tag, pen = data[0], data[1]
    if feat == "tag":
        return tag
    if feat == "pen":
        return pen
    return [np.concatenate([t, p], axis=1) for t, p in zip(tag, pen)]


def load(split):
    z = np.load(os.path.join(EMB, f"{split}.npz"), allow_pickle=True)
    # object arrays of equal-length tracks come back as one block: make each a float32 array again
    def f32(a):
        return [np.asarray(x, np.float32).reshape(-1, np.asarray(a[0]).shape[-1]) for x in a]
    return f32(z["tag"]), f32(z["pen"]), json.loads(str(z["meta"]))


# ---------------------------------------------------------------- train
def make_batch(seqs, labels, by_label, rng, n, T):
    """n streams of T steps: segments from random tracks (mid-track starts), genre switches."""
    D = seqs[0].shape[1]
    x = np.zeros((T, n, D), np.float32)
    y = np.zeros((T, n), np.int64)
    w = np.zeros((T, n), np.float32)
    for b in range(n):
        t = 0
        prev = -1
        while t < T:
            lab = rng.integers(len(LABELS))
            if lab == prev and rng.random() < 0.8:
                continue
            cand = by_label[lab]
            s = seqs[cand[rng.integers(len(cand))]]
            L = int(rng.integers(4, len(s) + 1))
            a = int(rng.integers(0, len(s) - L + 1))
            L = min(L, T - t)
            x[t:t + L, b] = s[a:a + L]
            y[t:t + L, b] = lab
            w[t:t + L, b] = 1.0
            if prev >= 0:
                w[t:t + min(SWITCH_GRACE, L), b] = 0.0
            prev = lab
            t += L
    return x, y, w


def fit(feat, hidden=HIDDEN, epochs=60, log=True, seed=SEED):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    tr = load("train")
    va = load("val")
    va_x = pick(va, feat)
    seqs = pick(tr, feat)
    labels = [LABELS.index(m["label"]) for m in tr[2]]
    keep = [i for i, s in enumerate(seqs) if len(s) >= 4]
    by_label = [[i for i in keep if labels[i] == c] for c in range(len(LABELS))]
    allx = np.concatenate([seqs[i] for i in keep])
    mu, sd = allx.mean(0), allx.std(0) + 1e-3
    D = allx.shape[1]
    gru = nn.GRU(D, hidden)
    head = nn.Linear(hidden, len(LABELS))
    drop = nn.Dropout(float(os.environ.get("GENRE_DROP", "0.2")))
    noise = float(os.environ.get("GENRE_NOISE", "0.3"))
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=float(os.environ.get("GENRE_WD", "1e-2")))
    rng = np.random.default_rng(seed)
    # class weights: sources are unbalanced; sample labels uniformly instead (make_batch)
    mu_t, sd_t = torch.from_numpy(mu), torch.from_numpy(sd)
    best = (-1, None)
    for ep in range(epochs):
        gru.train()
        for _ in range(20):
            x, y, w = make_batch(seqs, labels, by_label, rng, 32, 60)
            x = torch.from_numpy(x)
            x = (x - mu_t) / sd_t
            x = x + noise * torch.randn_like(x)
            out, _ = gru(drop(x))
            logit = head(out)
            loss = nn.functional.cross_entropy(logit.reshape(-1, len(LABELS)), torch.from_numpy(y).reshape(-1),
                                               reduction="none")
            wt = torch.from_numpy(w).reshape(-1)
            loss = (loss * wt).sum() / wt.sum()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        W = dict(mu=mu, sd=sd, **{"gru." + k: v.detach().numpy().copy() for k, v in gru.state_dict().items()},
                 **{"head." + k: v.detach().numpy().copy() for k, v in head.state_dict().items()})
        acc = track_metrics(posteriors(W, va_x), va[2])["track_acc"]
        if acc > best[0]:
            best = (acc, W, ep)
        if log and ep % 5 == 4:
            print(f"[train {feat} h{hidden}] epoch {ep + 1} loss {loss.item():.3f} val track acc {acc:.3f}", flush=True)
    return best


def gru_np(W, x, h=None):
    """numpy GRU (PyTorch gate order r, z, n) + softmax head: the reference the export is checked on."""
    H = W["gru.weight_hh_l0"].shape[1]
    h = np.zeros(H, np.float64) if h is None else h
    Wi, Wh = W["gru.weight_ih_l0"].astype(np.float64), W["gru.weight_hh_l0"].astype(np.float64)
    bi, bh = W["gru.bias_ih_l0"].astype(np.float64), W["gru.bias_hh_l0"].astype(np.float64)
    xs = (x - W["mu"]) / W["sd"]
    out = []
    for t in range(len(xs)):
        gi, gh = Wi @ xs[t] + bi, Wh @ h + bh
        r = 1 / (1 + np.exp(-(gi[:H] + gh[:H])))
        z = 1 / (1 + np.exp(-(gi[H:2 * H] + gh[H:2 * H])))
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        h = (1 - z) * n + z * h
        lg = W["head.weight"] @ h + W["head.bias"]
        e = np.exp(lg - lg.max())
        out.append(e / e.sum())
    return np.array(out), h


def posteriors(W, seqs):
    return [gru_np(W, s)[0] for s in seqs]


def stable_from(pred, target):
    """First step index after which the per-step argmax is `target` to the end (None if never)."""
    ok = pred == target
    if not ok[-1]:
        return None
    j = len(ok) - 1
    while j > 0 and ok[j - 1]:
        j -= 1
    return j


SMOOTH = 3  # the bundle's decision: a 3 s moving average = round(3.0 / 0.992) steps


def smooth(p, w=SMOOTH):
    """Causal moving average over the last `w` steps (fewer at the start), as seqrec's decision."""
    c = np.cumsum(np.vstack([np.zeros((1, p.shape[1])), p]), axis=0)
    k = np.arange(1, len(p) + 1)
    lo = np.maximum(0, k - w)
    return (c[k] - c[lo]) / (k - lo)[:, None]


def track_metrics(posts, meta, smoothed=False):
    if smoothed:
        posts = [smooth(p) if len(p) else p for p in posts]
    correct, n = 0, 0
    conf = np.zeros((len(LABELS), len(LABELS)), int)
    stable, flips, minutes = [], 0, 0.0
    per_source = {}
    for p, m in zip(posts, meta):
        if len(p) == 0:
            continue
        t = LABELS.index(m["label"])
        guess = int(np.argmax(p.mean(0)))
        conf[t, guess] += 1
        correct += guess == t
        n += 1
        s = per_source.setdefault(m["source"], [0, 0])
        s[0] += guess == t
        s[1] += 1
        pred = p.argmax(1)
        flips += int((pred[1:] != pred[:-1]).sum())
        minutes += len(p) * STEP_S / 60
        j = stable_from(pred, t)
        stable.append(step_time(j) if j is not None else None)
    st = [s for s in stable if s is not None]
    return dict(track_acc=correct / max(n, 1), tracks=n, confusion=conf.tolist(),
                per_source={k: dict(acc=v[0] / v[1], tracks=v[1]) for k, v in sorted(per_source.items())},
                flips_per_min=flips / max(minutes, 1e-9),
                stable_median_s=float(np.median(st)) if st else None,
                stable_within_6s=sum(s <= 6.0 for s in st) / max(n, 1),
                never_stable=sum(s is None for s in stable))


def stage_select():
    res = {}
    for feat in ("tag", "pen"):
        for hidden in (32, 64):
            acc, _, ep = fit(feat, hidden, epochs=40, log=False)
            res[f"{feat}-h{hidden}"] = dict(val_track_acc=acc, best_epoch=ep)
            print(f"[select] {feat} hidden {hidden}: val track acc {acc:.3f} (epoch {ep + 1})", flush=True)
    json.dump(res, open(os.path.join(WORK, "select.json"), "w"), indent=1)


def stage_train():
    feat = os.environ.get("GENRE_FEAT", "pen")
    acc, W, ep = fit(feat, HIDDEN, epochs=int(os.environ.get("GENRE_EPOCHS", "60")))
    print(f"[train] kept epoch {ep + 1}: val track acc {acc:.3f}", flush=True)
    np.savez(WEIGHTS, **{"w:" + k: v for k, v in W.items()}, meta=json.dumps(
        dict(feat=feat, hidden=HIDDEN, epoch=ep + 1, val_track_acc=acc, labels=LABELS)))


# ---------------------------------------------------------------- export
def load_weights():
    wz = np.load(WEIGHTS)
    return {k[2:]: wz[k] for k in wz.files if k.startswith("w:")}, json.loads(str(wz["meta"]))


def stage_export():
    """ONNX GRU (inputs x [T,1,D], h0 [1,1,H]; outputs y softmax [T,1,7], hn) with the input
    standardisation folded into the first layer, checked against the numpy reference."""
    import torch
    from torch import nn
    W, meta = load_weights()
    D, H = W["gru.weight_ih_l0"].shape[1], W["gru.weight_hh_l0"].shape[1]

    class Export(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.head = nn.GRU(D, H), nn.Linear(H, len(LABELS))

        def forward(self, x, h0):
            y, hn = self.gru(x, h0)
            return torch.softmax(self.head(y), dim=-1), hn

    exp = Export().eval()
    t = {k: torch.from_numpy(v.astype(np.float32)) for k, v in W.items()}
    with torch.no_grad():
        exp.gru.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("gru.")})
        exp.gru.weight_ih_l0.copy_(t["gru.weight_ih_l0"] / t["sd"])
        exp.gru.bias_ih_l0.copy_(t["gru.bias_ih_l0"] - t["gru.weight_ih_l0"] @ (t["mu"] / t["sd"]))
        exp.head.load_state_dict({"weight": t["head.weight"], "bias": t["head.bias"]})
    x = pick(load("val"), meta["feat"])[0]
    with torch.no_grad():
        p, _ = exp(torch.from_numpy(x)[:, None], torch.zeros(1, 1, H))
    ref, _ = gru_np(W, x)
    d = float(np.abs(p[:, 0].numpy() - ref).max())
    assert d < 1e-5, d
    torch.onnx.export(exp, (torch.zeros(5, 1, D), torch.zeros(1, 1, H)), HEAD, opset_version=OPSET,
                      input_names=["x", "h0"], output_names=["y", "hn"],
                      dynamic_axes={"x": {0: "T"}, "y": {0: "T"}}, do_constant_folding=True)
    print(f"[export] {HEAD}: fold check {d:.1e}, params {sum(q.numel() for q in exp.parameters())}", flush=True)


# ---------------------------------------------------------------- eval
MSD_MAP = {
    "rock": ["rock", "alternative", "alternative rock", "metal", "classic rock", "indie rock", "punk",
             "hard rock", "heavy metal", "Progressive rock"],
    "electronic": ["electronic", "dance", "electronica", "electro", "House", "ambient", "chillout"],
    "jazz": ["jazz"], "blues": ["blues"], "country": ["country"],
    # MSD's 50 tags name no classical and no Latin genre: the zero-shot baseline cannot say them.
}


def baseline_scores(tag):
    names = json.load(open(os.path.join(MODEL_DIR, "musicnn_tags.json")))["MSD_musicnn"]
    m = tag.mean(0)
    return np.array([max((m[names.index(t)] for t in MSD_MAP.get(lab, [])), default=-1.0) for lab in LABELS])


def ort_head():
    import onnxruntime as ort
    sess = ort.InferenceSession(HEAD, providers=["CPUExecutionProvider"])
    H = [i for i in sess.get_inputs() if i.name == "h0"][0].shape[2]

    def run(x):
        y, _ = sess.run(["y", "hn"], {"x": x.astype(np.float32)[:, None], "h0": np.zeros((1, 1, H), np.float32)})
        return y[:, 0]
    return run


def switch_eval(items, run, feat, rng, n_pairs=120, a_s=20.0, b_s=25.0):
    """Audio concatenations A[:a_s] + B[:b_s] of two held-out tracks of different genres, embedded as
    one stream: the time from the switch until the head's argmax names B's genre for good."""
    import soundfile as sf
    res = []
    for _ in range(n_pairs):
        i, j = rng.choice(len(items), 2, replace=False)
        if items[i]["label"] == items[j]["label"]:
            continue
        a, _ = sf.read(os.path.join(ROOT, items[i]["path"]), dtype="float32")
        b, _ = sf.read(os.path.join(ROOT, items[j]["path"]), dtype="float32")
        y = np.concatenate([a[:int(a_s * SR)], b[:int(b_s * SR)]])
        tag, pen = musicnn(y)
        pred = run(pick(([tag], [pen]), feat)[0]).argmax(1)
        k = stable_from(pred, LABELS.index(items[j]["label"]))
        res.append(None if k is None else step_time(k) - a_s)
    ok = [r for r in res if r is not None]
    return dict(pairs=len(res), followed=len(ok) / max(len(res), 1),
                follow_median_s=float(np.median(ok)) if ok else None,
                follow_p90_s=float(np.percentile(ok, 90)) if ok else None,
                within_6s=sum(r <= 6.0 for r in ok) / max(len(res), 1))


def stage_eval():
    W, meta = load_weights()
    feat = meta["feat"]
    run = ort_head()
    out = dict(meta=meta)
    rng = np.random.default_rng(1)
    # GENRE_EVAL_SPLITS=val while choosing; the test split is read once, for the model card.
    splits = os.environ.get("GENRE_EVAL_SPLITS", "val,test").split(",")
    for split in splits:
        data = load(split)
        tag, items = data[0], data[2]
        xs = pick(data, feat)
        posts = [run(x) if len(x) else np.zeros((0, len(LABELS))) for x in xs]
        m = track_metrics(posts, items)
        m["decision_3s"] = {k: v for k, v in track_metrics(posts, items, smoothed=True).items()
                            if k in ("flips_per_min", "stable_median_s", "stable_within_6s", "never_stable")}
        base_ok, base_conf = 0, np.zeros((len(LABELS), len(LABELS)), int)
        base_src = {}
        for t, it in zip(tag, items):
            g = int(np.argmax(baseline_scores(t)))
            k = LABELS.index(it["label"])
            base_conf[k, g] += 1
            base_ok += g == k
            s = base_src.setdefault(it["source"], [0, 0])
            s[0] += g == k
            s[1] += 1
        m["baseline_msd_zero_shot"] = dict(track_acc=base_ok / len(items), confusion=base_conf.tolist(),
                                           per_source={k: v[0] / v[1] for k, v in sorted(base_src.items())})
        m["switch"] = switch_eval(items, run, feat, rng)
        out[split] = m
        print(f"[eval] {split}: after the 3 s decision smoothing {m['decision_3s']}")
        print(f"[eval] {split}: head {m['track_acc']:.3f} ({m['tracks']} tracks), baseline "
              f"{m['baseline_msd_zero_shot']['track_acc']:.3f}; stable median {m['stable_median_s']} s, "
              f"within 6 s {m['stable_within_6s']:.2f}; flips/min {m['flips_per_min']:.2f}; switch {m['switch']}",
              flush=True)
        print("   confusion (rows true, cols guessed):", LABELS)
        for lab, row in zip(LABELS, m["confusion"]):
            print(f"   {lab:11s}", row)
        for src, v in m["per_source"].items():
            print(f"   {src:28s} {v['acc']:.2f} of {v['tracks']}  (baseline {m['baseline_msd_zero_shot']['per_source'][src]:.2f})")
    if splits == ["val", "test"]:
        json.dump(out, open(METRICS, "w"), indent=1)


# ---------------------------------------------------------------- refs
def stage_refs():
    """References for tests/genre.rs, on the two fixture clips: onnxruntime's genre_head.onnx over the
    Python penultimate features -> fixtures/genre/<clip>.genre.posteriors.npy. bach_16k.wav's features
    come from scripts/genre/make_musicnn_refs.py; monteverdi_16k.wav's (a held-out-source clip,
    scripts/genre/make_fixture_audio.py) are computed here the same way and saved beside it."""
    import soundfile as sf
    fx = os.path.join(ROOT, "fixtures", "genre")
    run = ort_head()
    for clip in ("bach", "monteverdi"):
        pen_path = os.path.join(fx, f"{clip}.onnx_msd.penultimate.npy")
        if clip != "bach":
            y, sr = sf.read(os.path.join(fx, f"{clip}_16k.wav"), dtype="float32")
            assert sr == SR
            np.save(pen_path, musicnn(y)[1].astype(np.float32))
        y = run(np.load(pen_path)).astype(np.float32)
        np.save(os.path.join(fx, f"{clip}.genre.posteriors.npy"), y)
        m = y.mean(0)
        print(f"[refs] {clip}_16k.wav:", y.shape, "summary", LABELS[int(m.argmax())],
              dict(zip(LABELS, m.round(4))))


if __name__ == "__main__":
    for stage in sys.argv[1:]:
        globals()["stage_" + stage]()
