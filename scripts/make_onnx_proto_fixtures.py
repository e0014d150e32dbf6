#!/usr/bin/env python3
"""Build the ONNX fixtures that test seqrec's protobuf decoder (src/onnx/proto.rs).

Run from the repository root with a Python that has numpy, onnx and torch
(Debian's /usr/bin/python3 with python3-torch and python3-onnx works):

    /usr/bin/python3 scripts/make_onnx_proto_fixtures.py

It writes, under fixtures/onnx/, for each model NAME:

    NAME.onnx            the model
    NAME.expected.toml   what the decoder must return, read back from NAME.onnx
                         by the `onnx` Python package (an independent decoder)

Models:

    lstm_h0c0      torch.nn.LSTM(4, 3) exported by torch.onnx.export, with h0/c0 inputs
    gru2_linear    torch.nn.GRU(4, 3, num_layers=2, batch_first=True) + Linear(3, 2)
    handmade       built with onnx.helper: float_data / raw_data / int64_data /
                   int32_data / double_data initializers, scalar and empty tensors,
                   a Constant node, attributes of every kind, a custom domain
    wire_variants  encoded byte by byte: packed dims, unpacked float_data and
                   int64_data, packed fields split in two, unknown fields of every
                   wire type in every message, fields out of order, non-minimal
                   varints; checked to load with the `onnx` package

The .expected.toml files have this layout:

    ir_version = 7
    opset = 14                      # default-domain opset, 0 if none
    [graph]
    name = "..."
    [[graph.input]]  / [[graph.output]]
    name, elem_type, shape = [{value = 4}, {param = "seq"}, {}]
    [[graph.initializer]]
    name, dims, data_type, values   # values absent if the type is not decoded
    [[graph.node]]
    name, op_type, domain, inputs, outputs
    [[graph.node.attribute]]
    name, kind ("float" | "int" | "string" | "tensor" | "floats" | "ints" |
    "strings" | "other"), value (a tensor is an inline table like an initializer)

Floats are written with Python's repr of the exact float32 value, so parsing
them as f64 and rounding to f32 is exact.
"""

import io
import math
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "onnx")
MAX_BYTES = 50_000

# ---------------------------------------------------------------------------
# TOML writer (just what the expected files need)
# ---------------------------------------------------------------------------


def toml_str(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_float(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(x)
    if "e" not in r and "." not in r:
        r += ".0"
    return r


def toml_val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return toml_float(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_val(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, toml_val(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


# ---------------------------------------------------------------------------
# Expected values, read with the onnx package
# ---------------------------------------------------------------------------

DECODED = {TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.DOUBLE}


def tensor_expect(t):
    d = {"name": t.name, "dims": [int(x) for x in t.dims], "data_type": int(t.data_type)}
    if t.data_type in DECODED:
        arr = numpy_helper.to_array(t).reshape(-1)
        if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE):
            d["values"] = [float(x) for x in arr]
        else:
            d["values"] = [int(x) for x in arr]
    return d


def shape_expect(vi):
    tt = vi.type.tensor_type if vi.type.WhichOneof("value") == "tensor_type" else None
    if tt is None:
        return 0, []
    dims = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            dims.append({"value": int(d.dim_value)})
        elif which == "dim_param":
            dims.append({"param": d.dim_param})
        else:
            dims.append({})
    return int(tt.elem_type), dims


KINDS = {
    onnx.AttributeProto.FLOAT: "float",
    onnx.AttributeProto.INT: "int",
    onnx.AttributeProto.STRING: "string",
    onnx.AttributeProto.TENSOR: "tensor",
    onnx.AttributeProto.FLOATS: "floats",
    onnx.AttributeProto.INTS: "ints",
    onnx.AttributeProto.STRINGS: "strings",
}


def attr_expect(a):
    kind = KINDS.get(a.type, "other")
    d = {"name": a.name, "kind": kind}
    if kind == "float":
        d["value"] = float(np.float32(a.f))
    elif kind == "int":
        d["value"] = int(a.i)
    elif kind == "string":
        d["value"] = a.s.decode("utf-8")
    elif kind == "tensor":
        d["value"] = tensor_expect(a.t)
    elif kind == "floats":
        d["value"] = [float(np.float32(x)) for x in a.floats]
    elif kind == "ints":
        d["value"] = [int(x) for x in a.ints]
    elif kind == "strings":
        d["value"] = [s.decode("utf-8") for s in a.strings]
    return d


def write_expected(name, data):
    m = onnx.load_from_string(data)
    opset = 0
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            opset = int(o.version)
    g = m.graph
    lines = [
        "# Generated by scripts/make_onnx_proto_fixtures.py from %s.onnx; do not edit." % name,
        "ir_version = %d" % m.ir_version,
        "opset = %d" % opset,
        "",
        "[graph]",
        "name = %s" % toml_str(g.name),
    ]
    for key, vis in (("input", g.input), ("output", g.output)):
        for vi in vis:
            elem, shape = shape_expect(vi)
            lines += [
                "",
                "[[graph.%s]]" % key,
                "name = %s" % toml_str(vi.name),
                "elem_type = %d" % elem,
                "shape = %s" % toml_val(shape),
            ]
    for t in g.initializer:
        lines += ["", "[[graph.initializer]]"]
        lines += ["%s = %s" % (k, toml_val(v)) for k, v in tensor_expect(t).items()]
    for n in g.node:
        lines += [
            "",
            "[[graph.node]]",
            "name = %s" % toml_str(n.name),
            "op_type = %s" % toml_str(n.op_type),
            "domain = %s" % toml_str(n.domain),
            "inputs = %s" % toml_val(list(n.input)),
            "outputs = %s" % toml_val(list(n.output)),
        ]
        for a in n.attribute:
            lines += ["", "[[graph.node.attribute]]"]
            lines += ["%s = %s" % (k, toml_val(v)) for k, v in attr_expect(a).items()]
    with open(os.path.join(OUT, name + ".expected.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def save(name, data):
    if len(data) > MAX_BYTES:
        sys.exit("%s.onnx is %d bytes, over the %d-byte budget" % (name, len(data), MAX_BYTES))
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(data)
    write_expected(name, data)
    print("wrote %s.onnx (%d bytes) and %s.expected.toml" % (name, len(data), name))


# ---------------------------------------------------------------------------
# torch exports
# ---------------------------------------------------------------------------


def torch_models():
    import torch

    torch.manual_seed(0)

    lstm = torch.nn.LSTM(4, 3).eval()
    x = torch.randn(5, 1, 4)
    h0 = torch.zeros(1, 1, 3)
    c0 = torch.zeros(1, 1, 3)
    f = io.BytesIO()
    torch.onnx.export(
        lstm,
        (x, (h0, c0)),
        f,
        input_names=["x", "h0", "c0"],
        output_names=["y", "hn", "cn"],
        dynamic_axes={"x": {0: "seq"}, "y": {0: "seq"}},
        opset_version=14,
    )
    save("lstm_h0c0", f.getvalue())

    class GruHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(4, 3, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(3, 2)

        def forward(self, x, h0):
            y, hn = self.gru(x, h0)
            return self.head(y), hn

    model = GruHead().eval()
    f = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.randn(1, 5, 4), torch.zeros(2, 1, 3)),
        f,
        input_names=["x", "h0"],
        output_names=["logits", "hn"],
        dynamic_axes={"x": {1: "frames"}, "logits": {1: "frames"}},
        opset_version=14,
    )
    save("gru2_linear", f.getvalue())


# ---------------------------------------------------------------------------
# onnx.helper
# ---------------------------------------------------------------------------


def handmade():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((2, 3)).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38], np.float32)
    inits = [
        # float_data (packed), not raw
        helper.make_tensor("w_float_data", TensorProto.FLOAT, [2, 3], w.reshape(-1).tolist()),
        # raw_data
        helper.make_tensor("w_raw", TensorProto.FLOAT, [3, 2], w.T.tobytes(), raw=True),
        helper.make_tensor("special_raw", TensorProto.FLOAT, [7], special.tobytes(), raw=True),
        helper.make_tensor("i64_data", TensorProto.INT64, [4], [0, -1, 2**62, -(2**63)]),
        helper.make_tensor(
            "i64_raw", TensorProto.INT64, [2, 1], np.array([7, -8], np.int64).tobytes(), raw=True
        ),
        helper.make_tensor("i32_data", TensorProto.INT32, [3], [-5, 0, 2**31 - 1]),
        helper.make_tensor("f64_data", TensorProto.DOUBLE, [2], [0.1, -1e300]),
        helper.make_tensor("scalar", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
        # not decoded by seqrec: kept with data_type, values absent
        helper.make_tensor("f16", TensorProto.FLOAT16, [2], np.array([1, 2], np.float16).tobytes(), raw=True),
    ]
    const = helper.make_node(
        "Constant",
        [],
        ["axes"],
        name="const_axes",
        value=helper.make_tensor("", TensorProto.INT64, [1], [0]),
    )
    const_f = helper.make_node(
        "Constant", [], ["c"], name="const_f", value=numpy_helper.from_array(np.array([[1.25, -2.5]], np.float32))
    )
    gemm = helper.make_node("Gemm", ["x", "w_float_data", ""], ["g"], name="gemm", alpha=0.75, transB=1)
    kinds = helper.make_node(
        "Kinds",
        ["g", "axes"],
        ["k", ""],
        name="all_kinds",
        domain="com.example",
        f=-1.5,
        i=-3,
        s="forward",
        t=helper.make_tensor("t", TensorProto.DOUBLE, [1], [2.5]),
        floats=[1.0, -0.5, 1e-3],
        ints=[1, -1, 2**40],
        strings=["Sigmoid", "Tanh", ""],
    )
    # An empty list keeps its type (helper cannot infer it from no values).
    kinds.attribute.append(onnx.AttributeProto(name="empty_ints", type=onnx.AttributeProto.INTS))
    kinds.attribute.append(
        helper.make_attribute("body", helper.make_graph([], "sub", [], []))
    )
    unnamed = helper.make_node("Identity", ["k"], ["y"])
    graph = helper.make_graph(
        [const, const_f, gemm, kinds, unnamed],
        "handmade",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("h", TensorProto.INT64, [None, 1, "n"]),
            helper.make_tensor_value_info("s", TensorProto.DOUBLE, []),
            helper.make_tensor_value_info("u", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name="make_onnx_proto_fixtures",
        opset_imports=[helper.make_opsetid("com.example", 3), helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    save("handmade", model.SerializeToString())


# ---------------------------------------------------------------------------
# byte by byte
# ---------------------------------------------------------------------------


def varint(v, min_len=1):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v == 0 and len(out) + 1 >= min_len:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def tag(field, wire):
    return varint((field << 3) | wire)


def f_varint(field, v, min_len=1):
    return tag(field, 0) + varint(v, min_len)


def f_len(field, payload):
    return tag(field, 2) + varint(len(payload)) + payload


def f_f32(field, x):
    return tag(field, 5) + struct.pack("<f", x)


def f_f64(field, x):
    return tag(field, 1) + struct.pack("<d", x)


def packed_varints(field, vals):
    return f_len(field, b"".join(varint(v) for v in vals))


def packed_f32(field, vals):
    return f_len(field, struct.pack("<%df" % len(vals), *vals))


def packed_f64(field, vals):
    return f_len(field, struct.pack("<%dd" % len(vals), *vals))


# Unknown fields of all four wire types; field numbers unused by onnx.proto.
UNKNOWN = (
    f_varint(1000, 2**64 - 1)
    + tag(1001, 1) + struct.pack("<Q", 0x0123456789ABCDEF)
    + f_len(1002, b"\x08\x96\x01junk")
    + tag(1003, 5) + struct.pack("<I", 0xDEADBEEF)
)


def wire_variants():
    f32 = lambda x: float(np.float32(x))
    w = [f32(v) for v in (0.5, -1.25, 3.0, 1e-7, -0.0, 6.5)]
    t_packed_dims_unpacked_floats = (
        UNKNOWN
        + f_len(8, b"w_unpacked_floats")
        + packed_varints(1, [2, 3])
        + b"".join(f_f32(4, v) for v in w)
        + f_varint(2, TensorProto.FLOAT)  # data_type after the data
    )
    t_split_packed_int64 = (
        f_varint(2, TensorProto.INT64)
        + f_varint(1, 5)  # unpacked dims
        + packed_varints(7, [1, -2])
        + UNKNOWN
        + packed_varints(7, [3])
        + f_varint(7, 2**63)  # unpacked element mixed in: -2**63
        + f_varint(7, 5, min_len=4)  # non-minimal varint
        + f_len(8, b"i64_split")
    )
    t_unpacked_int32 = (
        f_len(8, b"i32_unpacked")
        + f_varint(1, 3)
        + f_varint(2, TensorProto.INT32)
        + f_varint(5, -4)  # int32 negatives are sign-extended to 10 bytes
        + f_varint(5, 0)
        + f_varint(5, 2**31 - 1)
    )
    t_double_mixed = (
        f_len(8, b"f64_mixed")
        + f_varint(1, 3)
        + f_varint(2, TensorProto.DOUBLE)
        + f_f64(10, 0.25)
        + packed_f64(10, [-1.5, 1e-300])
    )
    t_raw_3d = (
        f_len(9, struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
        + packed_varints(1, [1, 2, 2])
        + f_varint(2, TensorProto.FLOAT)
        + f_len(8, b"raw_3d")
        + f_len(12, b"a doc string")
    )
    const_tensor = f_varint(2, TensorProto.INT64) + packed_varints(1, [2]) + f_len(9, struct.pack("<2q", -1, 4))
    attr_value = UNKNOWN + f_len(5, const_tensor) + f_varint(20, onnx.AttributeProto.TENSOR) + f_len(1, b"value")
    const_node = (
        f_len(2, b"shape")
        + f_len(5, attr_value)
        + f_len(4, b"Constant")
        + f_len(3, b"const")
        + f_len(6, b"doc")
    )
    attr_perm = f_len(1, b"perm") + f_varint(20, onnx.AttributeProto.INTS) + f_varint(8, 0) + packed_varints(8, [2, 1])
    attr_scales = (
        f_len(1, b"scales")
        + f_f32(7, 0.5)  # unpacked floats
        + packed_f32(7, [2.0, -4.0])
        + f_varint(20, onnx.AttributeProto.FLOATS)
    )
    attr_alpha = f_varint(20, onnx.AttributeProto.FLOAT) + f_f32(2, 0.125) + f_len(1, b"alpha") + UNKNOWN
    attr_acts = f_len(1, b"activations") + f_len(9, b"Tanh") + f_varint(20, onnx.AttributeProto.STRINGS) + f_len(9, b"Relu")
    node2 = (
        f_len(1, b"x")
        + f_len(5, attr_perm)
        + f_len(1, b"shape")
        + UNKNOWN
        + f_len(5, attr_scales)
        + f_len(7, b"")
        + f_len(4, b"Transpose")
        + f_len(5, attr_alpha)
        + f_len(5, attr_acts)
        + f_len(2, b"y")
    )
    dim = lambda body: f_len(1, body)
    shape = dim(f_len(2, b"seq") + UNKNOWN) + dim(f_varint(1, 2)) + dim(b"") + dim(f_len(3, b"denotation") + f_varint(1, 2, min_len=3))
    tensor_type = f_len(2, shape) + UNKNOWN + f_varint(1, TensorProto.FLOAT)
    vi_x = f_len(2, f_len(1, tensor_type) + UNKNOWN) + f_len(1, b"x") + f_len(3, b"doc")
    vi_y = f_len(1, b"y") + f_len(2, f_len(1, f_varint(1, TensorProto.FLOAT)))
    graph = (
        f_len(12, vi_y)
        + UNKNOWN
        + f_len(5, t_packed_dims_unpacked_floats)
        + f_len(1, const_node)
        + f_len(5, t_split_packed_int64)
        + f_len(13, f_len(1, b"shape"))  # value_info: skipped
        + f_len(1, node2)
        + f_len(5, t_unpacked_int32)
        + f_len(11, vi_x)
        + f_len(5, t_double_mixed)
        + f_len(5, t_raw_3d)
        + f_len(10, b"graph doc")
        + f_len(2, b"wire_variants")
    )
    model = (
        UNKNOWN
        + f_len(2, b"hand-encoded")
        + f_len(8, f_len(1, b"com.example") + f_varint(2, 2))
        + f_len(7, graph)
        + f_len(8, UNKNOWN + f_varint(2, 17, min_len=2))
        + f_varint(1, 9, min_len=2)
        + f_len(14, f_len(1, b"k") + f_len(2, b"v"))
        + UNKNOWN
    )
    # The reference decoder must accept it, and must see what we meant.
    m = onnx.load_from_string(model)
    assert m.graph.initializer[1].int64_data == [1, -2, 3, -(2**63), 5], m.graph.initializer[1]
    assert list(m.graph.node[1].attribute[1].floats) == [0.5, 2.0, -4.0]
    assert m.ir_version == 9 and m.opset_import[1].version == 17
    assert model != m.SerializeToString()
    save("wire_variants", model)


def main():
    os.makedirs(OUT, exist_ok=True)
    handmade()
    wire_variants()
    torch_models()


if __name__ == "__main__":
    main()
