#!/usr/bin/env python3
"""Generate small recurrent ONNX models + reference arrays under fixtures/rnn/.

Exact commands (run from the repository root), in this order:

    /usr/bin/python3 scripts/make_rnn_refs.py torch   # Debian python3-torch 1.13 + python3-onnx
    python3          scripts/make_rnn_refs.py ort     # any python with onnxruntime + onnx + numpy

or both at once (spawns the two interpreters above; override with
$TORCH_PY / $ORT_PY):

    python3 scripts/make_rnn_refs.py all

Tool versions used for the committed fixtures: torch 1.13.0a0 (Debian), onnx
1.12.0 (Debian, torch stage), onnxruntime 1.31.1 + onnx 1.23.2 + numpy 2.4.6
(pyenv, ort stage).

Stage "torch":
  * for every case in TORCH_CASES builds an nn.RNN / nn.LSTM / nn.GRU
    (batch_first=False, batch 1), optionally followed by nn.Linear + softmax
    (or sigmoid) applied per time step, with forward
    ``forward(x, h0[, c0]) -> (y, hn[, cn])``;
  * exports <case>.onnx (opset 14, inputs x,h0[,c0], outputs y,hn[,cn],
    dynamic axis 0 "T" on x and y);
  * writes <case>.x.npy (float32 [T,1,I], seeded N(0,1)), <case>.y.npy,
    <case>.hn.npy (and <case>.cn.npy for LSTM): torch outputs for the whole
    sequence from a zero initial state;
  * exports lstm_bidirectional.onnx (no refs);
  * writes meta.json (without the ort diffs).

Stage "ort":
  * for every torch case runs onnxruntime on the whole sequence and in chunks of
    CHUNK frames carrying hn/cn -> h0/c0, writes <case>.y_chunked_ort.npy,
    asserts max|ort - torch| <= 1e-5 for y/hn/cn (whole and chunked), prints the
    max diffs and stores them in meta.json;
  * hand-builds gru_lbr0.onnx (one ONNX GRU node, linear_before_reset=0) and
    lstm_peephole.onnx (one ONNX LSTM node with the P input); their refs come
    from onnxruntime (whole sequence); the chunked run is checked against the
    whole run and saved as <case>.y_chunked_ort.npy;
  * records node op_types and initializer names/shapes of every model in
    meta.json and prints them.

Everything is seeded; re-running produces the same arrays.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "fixtures", "rnn")
META = os.path.join(OUT, "meta.json")

T = 50
CHUNK = 7
TOL = 1e-5
OPSET = 14

# name: (cell, nonlinearity, layers, I, H, O or None, head activation or None, seed)
TORCH_CASES = {
    "rnn_tanh_l1": ("rnn", "tanh", 1, 5, 6, None, None, 101),
    "rnn_relu_l2": ("rnn", "relu", 2, 6, 8, None, None, 102),
    "lstm_l1": ("lstm", None, 1, 5, 7, None, None, 103),
    "lstm_l2": ("lstm", None, 2, 6, 8, None, None, 104),
    "lstm_l3": ("lstm", None, 3, 7, 10, None, None, 105),
    "gru_l1": ("gru", None, 1, 5, 6, None, None, 106),
    "gru_l2": ("gru", None, 2, 8, 12, None, None, 107),
    "gru_l3": ("gru", None, 3, 6, 16, None, None, 108),
    "rnn_tanh_l2_head": ("rnn", "tanh", 2, 5, 9, 4, "softmax", 109),
    "lstm_l2_head": ("lstm", None, 2, 6, 8, 4, "softmax", 110),
    "gru_l2_head": ("gru", None, 2, 7, 10, 4, "softmax", 111),
    "lstm_l1_head_sigmoid": ("lstm", None, 1, 8, 16, 4, "sigmoid", 112),
    "lstm_40_128_l2_head12": ("lstm", None, 2, 40, 128, 12, "softmax", 113),
}

# hand-built single-node ONNX graphs (refs by onnxruntime)
# name: (cell, I, H, T, seed)
ONNX_CASES = {
    "gru_lbr0": ("gru", 5, 6, 20, 201),
    "lstm_peephole": ("lstm", 5, 6, 20, 202),
}


def state_names(cell):
    if cell == "lstm":
        return ["h0", "c0"], ["hn", "cn"]
    return ["h0"], ["hn"]


# --------------------------------------------------------------------------
# torch stage
# --------------------------------------------------------------------------
def stage_torch():
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)

    class Net(nn.Module):
        def __init__(self, cell, nonlin, layers, i, h, o, act, bidirectional=False):
            super().__init__()
            self.cell = cell
            if cell == "rnn":
                self.rnn = nn.RNN(i, h, layers, nonlinearity=nonlin, bidirectional=bidirectional)
            elif cell == "lstm":
                self.rnn = nn.LSTM(i, h, layers, bidirectional=bidirectional)
            else:
                self.rnn = nn.GRU(i, h, layers, bidirectional=bidirectional)
            self.head = nn.Linear(h, o) if o is not None else None
            self.act = act

        def _head(self, y):
            if self.head is None:
                return y
            y = self.head(y)
            if self.act == "softmax":
                return torch.softmax(y, dim=-1)
            return torch.sigmoid(y)

        def forward(self, x, h0, c0=None):
            if self.cell == "lstm":
                y, (hn, cn) = self.rnn(x, (h0, c0))
                return self._head(y), hn, cn
            y, hn = self.rnn(x, h0)
            return self._head(y), hn

    def perturb(net, seed):
        # default init is U(-1/sqrt(H), 1/sqrt(H)). Replace the RNN biases with
        # N(0, 0.5) so gates sit at varied operating points, scale the recurrent
        # weights by 1.5 (not for relu, to keep it bounded), and scale the head
        # (weights x4, bias N(0, 0.5)) so softmax/sigmoid outputs are not flat.
        g = torch.Generator().manual_seed(seed + 7919)
        with torch.no_grad():
            for name, p in net.rnn.named_parameters():
                if name.startswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
                elif getattr(net.rnn, "nonlinearity", "tanh") != "relu":
                    p.mul_(1.5)
            if net.head is not None:
                net.head.weight.mul_(4.0)
                net.head.bias.copy_(torch.randn(net.head.bias.shape, generator=g) * 0.5)

    def export(net, path, cell, layers_dirs, h, t_example):
        ins, outs = state_names(cell)
        x = torch.zeros(t_example, 1, net.rnn.input_size)
        st = tuple(torch.zeros(layers_dirs, 1, h) for _ in ins)
        torch.onnx.export(
            net, (x,) + st, path,
            opset_version=OPSET,
            input_names=["x"] + ins,
            output_names=["y"] + outs,
            dynamic_axes={"x": {0: "T"}, "y": {0: "T"}},
            do_constant_folding=True,
        )

    meta = {
        "generator": "scripts/make_rnn_refs.py",
        "torch_version": torch.__version__,
        "opset": OPSET,
        "T": T,
        "chunk": CHUNK,
        "tolerance": TOL,
        "layout": "batch_first=False, batch=1: x [T,1,I], y [T,1,O or H], "
                  "h0/hn/c0/cn [layers*dirs,1,H]",
        "cases": {},
    }

    for name, (cell, nonlin, layers, i, h, o, act, seed) in TORCH_CASES.items():
        torch.manual_seed(seed)
        net = Net(cell, nonlin, layers, i, h, o, act).eval()
        perturb(net, seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((T, 1, i)).astype(np.float32)
        ins, outs = state_names(cell)
        with torch.no_grad():
            st = [torch.zeros(layers, 1, h) for _ in ins]
            res = net(torch.from_numpy(x), *st)
        export(net, os.path.join(OUT, f"{name}.onnx"), cell, layers, h, 3)
        np.save(os.path.join(OUT, f"{name}.x.npy"), x)
        np.save(os.path.join(OUT, f"{name}.y.npy"), res[0].numpy().astype(np.float32))
        for oname, arr in zip(outs, res[1:]):
            np.save(os.path.join(OUT, f"{name}.{oname}.npy"), arr.numpy().astype(np.float32))
        y = res[0].numpy()
        print(f"[torch] {name}: y {tuple(y.shape)} max|y|={np.abs(y).max():.4f} "
              f"std(y)={y.std():.4f}")
        meta["cases"][name] = {
            "source": "torch",
            "cell": cell,
            "nonlinearity": nonlin if cell == "rnn" else None,
            "layers": layers,
            "bidirectional": False,
            "input_size": i,
            "hidden_size": h,
            "output_size": o if o is not None else h,
            "head": "linear" if o is not None else None,
            "head_activation": act,
            "state_inputs": ins,
            "state_outputs": outs,
            "state_shape": [layers, 1, h],
            "x_shape": [T, 1, i],
            "y_shape": [T, 1, o if o is not None else h],
            "T": T,
            "seed": seed,
            "files": {
                "onnx": f"{name}.onnx",
                "x": f"{name}.x.npy",
                "y": f"{name}.y.npy",
                **{k: f"{name}.{k}.npy" for k in outs},
                "y_chunked_ort": f"{name}.y_chunked_ort.npy",
            },
        }

    # bidirectional LSTM: a streaming engine must refuse it; no refs
    torch.manual_seed(301)
    bi = Net("lstm", None, 1, 5, 6, None, None, bidirectional=True).eval()
    export(bi, os.path.join(OUT, "lstm_bidirectional.onnx"), "lstm", 2, 6, 3)
    meta["cases"]["lstm_bidirectional"] = {
        "source": "torch",
        "cell": "lstm",
        "layers": 1,
        "bidirectional": True,
        "input_size": 5,
        "hidden_size": 6,
        "output_size": 12,
        "head": None,
        "head_activation": None,
        "state_inputs": ["h0", "c0"],
        "state_outputs": ["hn", "cn"],
        "state_shape": [2, 1, 6],
        "refs": False,
        "note": "bidirectional; a streaming engine should refuse to load it",
        "files": {"onnx": "lstm_bidirectional.onnx"},
    }
    print("[torch] lstm_bidirectional exported")

    with open(META, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"[torch] wrote {META}")


# --------------------------------------------------------------------------
# ort stage
# --------------------------------------------------------------------------
def build_single_node(name, cell, i, h, seed):
    """One ONNX GRU (linear_before_reset=0) or LSTM (with peepholes) node."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    g = 3 if cell == "gru" else 4
    s = 1.0 / np.sqrt(h)
    W = rng.uniform(-s, s, (1, g * h, i)).astype(np.float32)
    R = rng.uniform(-s, s, (1, g * h, h)).astype(np.float32)
    B = (rng.standard_normal((1, 2 * g * h)) * 0.5).astype(np.float32)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
             numpy_helper.from_array(B, "B")]
    ins, outs = state_names(cell)
    x_vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, i])
    st_vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, h]) for n in ins]
    y_vi = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, 1, h])
    out_vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, h]) for n in outs]
    if cell == "gru":
        node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "hn"],
                                name="gru", hidden_size=h, linear_before_reset=0)
    else:
        P = rng.uniform(-s, s, (1, 3 * h)).astype(np.float32)
        inits.append(numpy_helper.from_array(P, "P"))
        node = helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0", "P"],
                                ["y", "hn", "cn"], name="lstm", hidden_size=h)
    graph = helper.make_graph([node], name, [x_vi] + st_vi, [y_vi] + out_vi, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="seqrec make_rnn_refs.py")
    model.ir_version = 7  # same as the torch 1.13 exports
    onnx.checker.check_model(model)
    return model


def describe(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    nodes = []
    for n in m.graph.node:
        attrs = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, onnx.TensorProto):
                arr = numpy_helper.to_array(v)
                v = arr.tolist() if arr.size <= 8 else f"tensor{list(arr.shape)}"
            elif isinstance(v, (list, tuple)):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
            attrs[a.name] = v
        nodes.append({"op_type": n.op_type, "inputs": list(n.input),
                      "outputs": list(n.output), "attrs": attrs})
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    return {"ir_version": m.ir_version,
            "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
            "nodes": nodes, "initializers": inits}


def stage_ort():
    import numpy as np
    import onnx
    import onnxruntime as ort

    with open(META) as f:
        meta = json.load(f)
    meta["onnxruntime_version"] = ort.__version__
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1

    def session(path):
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run_whole(sess, x, ins, outs, state_shape):
        feed = {"x": x, **{n: np.zeros(state_shape, np.float32) for n in ins}}
        return sess.run(["y"] + outs, feed)

    def run_chunked(sess, x, ins, outs, state_shape):
        st = [np.zeros(state_shape, np.float32) for _ in ins]
        ys = []
        for t0 in range(0, x.shape[0], CHUNK):
            feed = {"x": x[t0:t0 + CHUNK], **dict(zip(ins, st))}
            r = sess.run(["y"] + outs, feed)
            ys.append(r[0])
            st = r[1:]
        return [np.concatenate(ys, axis=0)] + st

    def mdiff(a, b):
        assert a.shape == b.shape, (a.shape, b.shape)
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())

    print(f"{'case':24s} {'whole y':>10s} {'whole hn':>10s} {'whole cn':>10s} "
          f"{'chunk y':>10s} {'chunk hn':>10s} {'chunk cn':>10s}")
    for name, c in meta["cases"].items():
        if c["source"] != "torch" or c.get("refs") is False:
            continue
        ins, outs = c["state_inputs"], c["state_outputs"]
        sess = session(os.path.join(OUT, f"{name}.onnx"))
        x = np.load(os.path.join(OUT, f"{name}.x.npy"))
        ref = [np.load(os.path.join(OUT, f"{name}.y.npy"))] + \
              [np.load(os.path.join(OUT, f"{name}.{o}.npy")) for o in outs]
        whole = run_whole(sess, x, ins, outs, c["state_shape"])
        chunk = run_chunked(sess, x, ins, outs, c["state_shape"])
        np.save(os.path.join(OUT, f"{name}.y_chunked_ort.npy"), chunk[0].astype(np.float32))
        keys = ["y"] + outs
        dw = {k: mdiff(a, b) for k, a, b in zip(keys, whole, ref)}
        dc = {k: mdiff(a, b) for k, a, b in zip(keys, chunk, ref)}
        c["max_diff_ort_whole_vs_torch"] = dw
        c["max_diff_ort_chunked_vs_torch"] = dc
        f = lambda d, k: f"{d[k]:10.3e}" if k in d else f"{'-':>10s}"
        print(f"{name:24s} {f(dw,'y')} {f(dw,'hn')} {f(dw,'cn')} "
              f"{f(dc,'y')} {f(dc,'hn')} {f(dc,'cn')}")
        for k in keys:
            assert dw[k] <= TOL, (name, "whole", k, dw[k])
            assert dc[k] <= TOL, (name, "chunked", k, dc[k])

    # hand-built single-node graphs, refs by onnxruntime
    for name, (cell, i, h, t, seed) in ONNX_CASES.items():
        model = build_single_node(name, cell, i, h, seed)
        path = os.path.join(OUT, f"{name}.onnx")
        onnx.save(model, path)
        ins, outs = state_names(cell)
        rng = np.random.default_rng(seed + 1)
        x = rng.standard_normal((t, 1, i)).astype(np.float32)
        sess = session(path)
        whole = run_whole(sess, x, ins, outs, [1, 1, h])
        chunk = run_chunked(sess, x, ins, outs, [1, 1, h])
        np.save(os.path.join(OUT, f"{name}.x.npy"), x)
        np.save(os.path.join(OUT, f"{name}.y.npy"), whole[0].astype(np.float32))
        for o, a in zip(outs, whole[1:]):
            np.save(os.path.join(OUT, f"{name}.{o}.npy"), a.astype(np.float32))
        np.save(os.path.join(OUT, f"{name}.y_chunked_ort.npy"), chunk[0].astype(np.float32))
        keys = ["y"] + outs
        dc = {k: mdiff(a, b) for k, a, b in zip(keys, chunk, whole)}
        for k in keys:
            assert dc[k] <= TOL, (name, "chunked", k, dc[k])
        print(f"{name:24s} (ort refs) chunked-vs-whole: "
              + " ".join(f"{k}={v:.3e}" for k, v in dc.items())
              + f"  max|y|={np.abs(whole[0]).max():.4f}")
        meta["cases"][name] = {
            "source": "onnx-helper (refs by onnxruntime)",
            "cell": cell,
            "nonlinearity": None,
            "layers": 1,
            "bidirectional": False,
            "input_size": i,
            "hidden_size": h,
            "output_size": h,
            "head": None,
            "head_activation": None,
            "state_inputs": ins,
            "state_outputs": outs,
            "state_shape": [1, 1, h],
            "x_shape": [t, 1, i],
            "y_shape": [t, 1, 1, h],
            "T": t,
            "seed": seed,
            "linear_before_reset": 0 if cell == "gru" else None,
            "peephole": cell == "lstm",
            "note": ("single ONNX GRU node, linear_before_reset=0 (no torch equivalent); "
                     "y keeps the ONNX num_directions axis: [T,1,1,H]") if cell == "gru" else
                    ("single ONNX LSTM node with peephole input P [1,3H] (order p_i, p_o, p_f); "
                     "y keeps the ONNX num_directions axis: [T,1,1,H]"),
            "max_diff_ort_chunked_vs_ort_whole": dc,
            "files": {
                "onnx": f"{name}.onnx",
                "x": f"{name}.x.npy",
                "y": f"{name}.y.npy",
                **{k: f"{name}.{k}.npy" for k in outs},
                "y_chunked_ort": f"{name}.y_chunked_ort.npy",
            },
        }

    # graph structure of every model
    print()
    for name, c in meta["cases"].items():
        d = describe(os.path.join(OUT, c["files"]["onnx"]))
        c["onnx_ir_version"] = d["ir_version"]
        c["onnx_opset"] = d["opset"]
        c["onnx_nodes"] = d["nodes"]
        c["onnx_initializers"] = d["initializers"]
        print(f"{name}: ops = {[n['op_type'] for n in d['nodes']]}")

    with open(META, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"\n[ort] wrote {META}")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "torch":
        stage_torch()
    elif what == "ort":
        stage_ort()
    elif what == "all":
        me = os.path.abspath(__file__)
        subprocess.check_call([os.environ.get("TORCH_PY", "/usr/bin/python3"), me, "torch"])
        subprocess.check_call([os.environ.get("ORT_PY", "python3"), me, "ort"])
    else:
        sys.exit("usage: make_rnn_refs.py [torch|ort|all]")


if __name__ == "__main__":
    main()
