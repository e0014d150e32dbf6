//! Tests of the ONNX decoder (`seqrec::onnx`) against fixtures written by
//! `scripts/make_onnx_proto_fixtures.py`: each `fixtures/onnx/NAME.onnx` comes
//! with `NAME.expected.toml`, which the `onnx` Python package read back from
//! the same file. Plus robustness checks on damaged and foreign input.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use seqrec::Error;
use seqrec::onnx::{AttrValue, Dim, Model, Node, Tensor, TensorData, ValueInfo};

const FIXTURES: [&str; 4] = ["lstm_h0c0", "gru2_linear", "handmade", "wire_variants"];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/onnx")
        .join(name)
}

fn load(name: &str) -> Model {
    Model::load(fixture_path(&format!("{name}.onnx")))
        .unwrap_or_else(|e| panic!("{name}.onnx: {e}"))
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(&format!("{name}.onnx"))).unwrap()
}

fn expected(name: &str) -> toml::Table {
    let text = std::fs::read_to_string(fixture_path(&format!("{name}.expected.toml"))).unwrap();
    text.parse().unwrap()
}

// --- comparison with the expected files ---

fn int(v: &toml::Value) -> i64 {
    v.as_integer()
        .unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn float(v: &toml::Value) -> f64 {
    v.as_float().unwrap_or_else(|| panic!("not a float: {v}"))
}

fn string(v: &toml::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn array(v: &toml::Value) -> &[toml::Value] {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn field<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Value {
    t.get(key).unwrap_or_else(|| panic!("no `{key}` in {t:?}"))
}

fn tables<'a>(t: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    t.get(key)
        .map(|v| array(v).iter().map(|x| x.as_table().unwrap()).collect())
        .unwrap_or_default()
}

/// f32 equality that is exact, tells -0.0 from 0.0 and accepts NaN == NaN.
fn same_f32(got: f32, want: f64, what: &str) {
    let want = want as f32;
    assert!(
        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
        "{what}: got {got:e}, want {want:e}"
    );
}

fn same_f32s(got: &[f32], want: &toml::Value, what: &str) {
    let want = array(want);
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        same_f32(*g, float(w), &format!("{what}[{i}]"));
    }
}

fn check_tensor(t: &Tensor, want: &toml::Table, what: &str) {
    assert_eq!(t.name, string(field(want, "name")), "{what}: name");
    let dims: Vec<i64> = array(field(want, "dims")).iter().map(int).collect();
    assert_eq!(t.dims, dims, "{what}: dims");
    assert_eq!(
        i64::from(t.data_type),
        int(field(want, "data_type")),
        "{what}: data_type"
    );
    let n = t.numel().expect("numel");
    let Some(values) = want.get("values") else {
        assert_eq!(t.data, TensorData::Other, "{what}: data");
        return;
    };
    assert_eq!(array(values).len(), n, "{what}: numel");
    match &t.data {
        TensorData::F32(v) => same_f32s(v, values, what),
        TensorData::F64(v) => {
            let want: Vec<f64> = array(values).iter().map(float).collect();
            assert_eq!(v, &want, "{what}: values");
        }
        TensorData::I64(v) => {
            let want: Vec<i64> = array(values).iter().map(int).collect();
            assert_eq!(v, &want, "{what}: values");
        }
        TensorData::I32(v) => {
            let want: Vec<i64> = array(values).iter().map(int).collect();
            let got: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
            assert_eq!(got, want, "{what}: values");
        }
        TensorData::Other => panic!("{what}: data not decoded"),
    }
}

fn check_value_info(v: &ValueInfo, want: &toml::Table, what: &str) {
    assert_eq!(v.name, string(field(want, "name")), "{what}: name");
    assert_eq!(
        i64::from(v.elem_type),
        int(field(want, "elem_type")),
        "{what}: elem_type"
    );
    let shape: Vec<Dim> = array(field(want, "shape"))
        .iter()
        .map(|d| {
            let d = d.as_table().unwrap();
            if let Some(v) = d.get("value") {
                Dim::Fixed(int(v))
            } else if let Some(p) = d.get("param") {
                Dim::Param(string(p).to_owned())
            } else {
                Dim::Unknown
            }
        })
        .collect();
    assert_eq!(v.shape, shape, "{what}: shape");
}

fn check_node(n: &Node, want: &toml::Table, what: &str) {
    assert_eq!(n.name, string(field(want, "name")), "{what}: name");
    assert_eq!(n.op_type, string(field(want, "op_type")), "{what}: op_type");
    assert_eq!(n.domain, string(field(want, "domain")), "{what}: domain");
    let strs = |k| -> Vec<&str> { array(field(want, k)).iter().map(string).collect() };
    assert_eq!(n.inputs, strs("inputs"), "{what}: inputs");
    assert_eq!(n.outputs, strs("outputs"), "{what}: outputs");
    let attrs = tables(want, "attribute");
    assert_eq!(n.attributes.len(), attrs.len(), "{what}: attribute count");
    for (i, (a, w)) in n.attributes.iter().zip(attrs).enumerate() {
        let what = format!("{what}.attribute[{i}] `{}`", a.name);
        assert_eq!(a.name, string(field(w, "name")), "{what}: name");
        let kind = string(field(w, "kind"));
        match (&a.value, kind) {
            (AttrValue::Float(v), "float") => same_f32(*v, float(field(w, "value")), &what),
            (AttrValue::Int(v), "int") => assert_eq!(*v, int(field(w, "value")), "{what}"),
            (AttrValue::String(v), "string") => {
                assert_eq!(v, string(field(w, "value")).as_bytes(), "{what}")
            }
            (AttrValue::Tensor(t), "tensor") => {
                check_tensor(t, field(w, "value").as_table().unwrap(), &what)
            }
            (AttrValue::Floats(v), "floats") => same_f32s(v, field(w, "value"), &what),
            (AttrValue::Ints(v), "ints") => {
                let want: Vec<i64> = array(field(w, "value")).iter().map(int).collect();
                assert_eq!(v, &want, "{what}");
            }
            (AttrValue::Strings(v), "strings") => {
                let want: Vec<&[u8]> = array(field(w, "value"))
                    .iter()
                    .map(|s| string(s).as_bytes())
                    .collect();
                assert_eq!(v, &want, "{what}");
            }
            (AttrValue::Other, "other") => {}
            (got, kind) => panic!("{what}: got {got:?}, want a {kind}"),
        }
    }
}

fn check_against_expected(name: &str) {
    let m = load(name);
    let want = expected(name);
    assert_eq!(
        m.ir_version,
        int(field(&want, "ir_version")),
        "{name}: ir_version"
    );
    assert_eq!(m.opset, int(field(&want, "opset")), "{name}: opset");
    let g = field(&want, "graph").as_table().unwrap();
    assert_eq!(m.graph.name, string(field(g, "name")), "{name}: graph name");

    let inputs = tables(g, "input");
    assert_eq!(m.graph.inputs.len(), inputs.len(), "{name}: input count");
    for (i, (v, w)) in m.graph.inputs.iter().zip(inputs).enumerate() {
        check_value_info(v, w, &format!("{name}: input[{i}]"));
    }
    let outputs = tables(g, "output");
    assert_eq!(m.graph.outputs.len(), outputs.len(), "{name}: output count");
    for (i, (v, w)) in m.graph.outputs.iter().zip(outputs).enumerate() {
        check_value_info(v, w, &format!("{name}: output[{i}]"));
    }
    let inits = tables(g, "initializer");
    assert_eq!(
        m.graph.initializers.len(),
        inits.len(),
        "{name}: initializer count"
    );
    for (i, (t, w)) in m.graph.initializers.iter().zip(inits).enumerate() {
        check_tensor(t, w, &format!("{name}: initializer[{i}] `{}`", t.name));
    }
    let nodes = tables(g, "node");
    assert_eq!(m.graph.nodes.len(), nodes.len(), "{name}: node count");
    for (i, (n, w)) in m.graph.nodes.iter().zip(nodes).enumerate() {
        check_node(n, w, &format!("{name}: node[{i}] `{}`", n.name));
    }
}

#[test]
fn lstm_matches_expected() {
    check_against_expected("lstm_h0c0");
}

#[test]
fn gru_stack_matches_expected() {
    check_against_expected("gru2_linear");
}

#[test]
fn handmade_matches_expected() {
    check_against_expected("handmade");
}

#[test]
fn wire_variants_match_expected() {
    check_against_expected("wire_variants");
}

// --- what an importer relies on, spelled out ---

#[test]
fn lstm_structure() {
    let m = load("lstm_h0c0");
    assert_eq!(m.opset, 14);
    let ops: Vec<&str> = m.graph.nodes.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["LSTM", "Constant", "Squeeze"]);

    let lstm = &m.graph.nodes[0];
    assert_eq!(lstm.attr_int("hidden_size"), Some(3));
    assert_eq!(lstm.attr_int("layout"), None);
    assert_eq!(lstm.inputs.len(), 7);
    assert_eq!(lstm.inputs[0], "x");
    assert_eq!(lstm.inputs[4], "", "sequence_lens is omitted");
    assert_eq!(&lstm.inputs[5..], ["h0", "c0"]);
    assert_eq!(&lstm.outputs[1..], ["hn", "cn"]);

    let w = m.graph.initializer(&lstm.inputs[1]).expect("W");
    let r = m.graph.initializer(&lstm.inputs[2]).expect("R");
    let b = m.graph.initializer(&lstm.inputs[3]).expect("B");
    assert_eq!(w.dims, [1, 12, 4]);
    assert_eq!(r.dims, [1, 12, 3]);
    assert_eq!(b.dims, [1, 24]);
    assert_eq!(w.as_f32().unwrap().len(), 48);
    assert_eq!(b.numel(), Some(24));
    assert!(m.graph.initializer("no such tensor").is_none());

    let axes = m.graph.nodes[1]
        .attr_tensor("value")
        .expect("Constant value");
    assert_eq!(axes.as_i64(), Some(&[1i64][..]));
    assert!(axes.as_f32().is_none());

    assert_eq!(
        m.graph.inputs[0].shape,
        [Dim::Param("seq".into()), Dim::Fixed(1), Dim::Fixed(4)]
    );
}

#[test]
fn gru_stack_structure() {
    let m = load("gru2_linear");
    let grus: Vec<&Node> = m
        .graph
        .nodes
        .iter()
        .filter(|n| n.op_type == "GRU")
        .collect();
    assert_eq!(grus.len(), 2);
    for g in &grus {
        assert_eq!(g.attr_int("hidden_size"), Some(3));
        assert_eq!(g.attr_int("linear_before_reset"), Some(1));
    }
    let w1 = m.graph.initializer(&grus[1].inputs[1]).unwrap();
    assert_eq!(
        w1.dims,
        [1, 9, 3],
        "second layer takes the first's hidden state"
    );
}

#[test]
fn handmade_accessors() {
    let m = load("handmade");
    assert_eq!((m.ir_version, m.opset), (8, 13));
    let node = |name: &str| m.graph.nodes.iter().find(|n| n.name == name).unwrap();

    let gemm = node("gemm");
    assert_eq!(gemm.attr_float("alpha"), Some(0.75));
    assert_eq!(gemm.attr_int("transB"), Some(1));
    assert_eq!(gemm.attr_int("alpha"), None, "wrong kind");
    assert_eq!(gemm.attr("beta"), None);

    let k = node("all_kinds");
    assert_eq!(k.domain, "com.example");
    assert_eq!(k.attr_float("f"), Some(-1.5));
    assert_eq!(k.attr_int("i"), Some(-3));
    assert_eq!(k.attr_string("s"), Some("forward"));
    assert_eq!(k.attr_ints("ints"), Some(&[1, -1, 1 << 40][..]));
    assert_eq!(k.attr_ints("empty_ints"), Some(&[][..]));
    assert_eq!(k.attr_floats("floats"), Some(&[1.0, -0.5, 1e-3][..]));
    assert_eq!(k.attr_strings("strings"), Some(vec!["Sigmoid", "Tanh", ""]));
    assert_eq!(k.attr_tensor("t").unwrap().as_f64(), Some(&[2.5][..]));
    assert_eq!(k.attr("body"), Some(&AttrValue::Other));
    assert_eq!(k.attr_string("body"), None);

    let t = |name: &str| m.graph.initializer(name).unwrap();
    assert_eq!(t("w_float_data").as_f32().unwrap(), {
        // w_raw holds the transpose of w_float_data.
        let r = t("w_raw").as_f32().unwrap();
        [r[0], r[2], r[4], r[1], r[3], r[5]]
    });
    let special = t("special_raw").as_f32().unwrap();
    assert!(special[1] == 0.0 && special[1].is_sign_negative());
    assert!(special[4].is_nan());
    assert_eq!(special[5], f32::from_bits(1), "smallest subnormal");
    assert_eq!(special[6], f32::MAX);
    assert_eq!(
        t("i64_data").as_i64(),
        Some(&[0, -1, 1 << 62, i64::MIN][..])
    );
    assert_eq!(t("i32_data").as_i32(), Some(&[-5, 0, i32::MAX][..]));
    assert_eq!(t("scalar").dims, [] as [i64; 0]);
    assert_eq!(t("scalar").as_f32(), Some(&[0.5][..]));
    assert_eq!(t("empty").numel(), Some(0));
    assert_eq!(t("f16").data, TensorData::Other);
    assert_eq!(seqrec::onnx::data_type_name(t("f16").data_type), "FLOAT16");
}

// --- errors ---

#[test]
fn missing_file_is_an_io_error() {
    let e = Model::load(fixture_path("does_not_exist.onnx")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("does_not_exist.onnx"));
}

#[test]
fn empty_file_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    let e = Model::load(&p).unwrap_err();
    let Error::InvalidModel { path, reason } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, &p);
    assert_eq!(reason, "the file is empty");
    assert!(
        e.to_string().contains("empty.onnx: invalid ONNX model"),
        "{e}"
    );
}

#[test]
fn text_files_are_invalid() {
    let texts: [&[u8]; 4] = [
        b"ir_version: 8\nopset_import { domain: \"\" version: 17 }\ngraph { name: \"g\" }\n",
        b"[package]\nname = \"seqrec\"\nversion = \"0.1.0\"\n",
        b"#!/usr/bin/env python3\nimport onnx\n",
        b"not an onnx model",
    ];
    for text in texts {
        let e = Model::parse(text, Path::new("model.onnx")).unwrap_err();
        assert!(matches!(e, Error::InvalidModel { .. }), "{e:?}");
    }
    let e = Model::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap_err();
    assert!(matches!(e, Error::InvalidModel { .. }), "{e:?}");
}

#[test]
fn corruption_is_reported_with_its_location() {
    let mut b = bytes("lstm_h0c0");
    let full = Model::parse(&b, Path::new("m.onnx")).unwrap();
    // Make the first initializer's raw_data one float short: find its bytes
    // and shrink the length prefix of that field only.
    let w = &full.graph.initializers[0];
    let raw: Vec<u8> = w
        .as_f32()
        .unwrap()
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    let at = b
        .windows(raw.len())
        .position(|win| win == raw.as_slice())
        .unwrap();
    // raw_data (field 9) of 192 bytes: tag 0x4a, length 0xc0 0x01.
    assert_eq!(&b[at - 3..at], [0x4a, 0xc0, 0x01]);
    // Shorten raw_data by 4 and turn the payload's last 4 bytes into an
    // unknown varint field (field 15: tag 0x78, then a non-minimal zero).
    b[at - 2] = 0xbc;
    b[at + 188..at + 192].copy_from_slice(&[0x78, 0x80, 0x80, 0x00]);
    let e = Model::parse(&b, Path::new("m.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("tensor `{}` (TensorProto at byte", w.name))
            && e.contains("raw_data has 188 bytes, but dims [1, 12, 4] of FLOAT need 192")
            && e.ends_with("(at graph.initializer[0])"),
        "{e}"
    );
}

// --- robustness: damaged input must give Ok or Err, never a panic or a hang ---

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `b`; whatever it returns, a decoded model must be self-consistent.
/// Returns whether it decoded.
fn parse_any(b: &[u8]) -> bool {
    let r = Model::parse(b, Path::new("fuzz.onnx"));
    match &r {
        Ok(m) => {
            let tensors = m.graph.initializers.iter().chain(
                m.graph
                    .nodes
                    .iter()
                    .flat_map(|n| n.attributes.iter())
                    .filter_map(|a| match &a.value {
                        AttrValue::Tensor(t) => Some(t),
                        _ => None,
                    }),
            );
            for t in tensors {
                let n = t.numel().expect("decoded tensors have a valid numel");
                let len = match &t.data {
                    TensorData::F32(v) => v.len(),
                    TensorData::I64(v) => v.len(),
                    TensorData::I32(v) => v.len(),
                    TensorData::F64(v) => v.len(),
                    TensorData::Other => n,
                };
                assert_eq!(len, n, "tensor `{}`", t.name);
            }
        }
        Err(e) => assert!(matches!(e, Error::InvalidModel { .. }), "{e:?}"),
    }
    r.is_ok()
}

#[test]
fn every_truncation_of_every_fixture() {
    for name in FIXTURES {
        let b = bytes(name);
        for n in 0..b.len() {
            parse_any(&b[..n]);
        }
        // Cutting inside the graph field can never give a model.
        let m = load(name);
        assert!(!m.graph.nodes.is_empty());
    }
    // lstm_h0c0 ends with the graph and then opset_import: every cut before
    // the end of the graph is an error.
    let b = bytes("lstm_h0c0");
    let opset_at = b.len() - 4;
    assert_eq!(b[opset_at], 0x42, "opset_import tag");
    for n in 0..opset_at {
        assert!(!parse_any(&b[..n]), "cut at {n}");
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x005e_ed0f_0aa5_u64);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        let len = rng.below(300);
        buf.clear();
        buf.extend((0..len).map(|_| rng.next() as u8));
        // Often start like a model, to get past the first field.
        if rng.below(2) == 0 && len > 2 {
            buf[0] = 0x3a; // graph, length-delimited
            buf[1] = (len - 2).min(127) as u8;
        }
        parse_any(&buf);
    }
}

#[test]
fn random_mutations_of_fixtures() {
    let mut rng = Rng(0x00dd_ba11_u64);
    for name in FIXTURES {
        let orig = bytes(name);
        for _ in 0..3_000 {
            let mut b = orig.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                match rng.below(5) {
                    0 => b[i] = rng.next() as u8,
                    1 => b[i] ^= 1 << rng.below(8),
                    2 => {
                        b.remove(i);
                    }
                    3 => b.insert(i, rng.next() as u8),
                    // Large varint-looking bytes, e.g. inflated length prefixes.
                    _ => b[i] = 0xff,
                }
            }
            parse_any(&b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_any(&b);
    }

    #[test]
    fn overwritten_fixture_bytes_never_panic(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = bytes(FIXTURES[which]);
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        parse_any(&b);
    }
}
