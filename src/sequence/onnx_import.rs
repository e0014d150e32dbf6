//! Importing recurrent models from ONNX files for the native backend.
//!
//! `torch.onnx.export` writes `nn.RNN`/`nn.LSTM`/`nn.GRU` as one ONNX
//! `RNN`/`LSTM`/`GRU` node per layer, glued with `Slice` (the layer's slice of
//! `h0`/`c0`), `Squeeze` (dropping the direction axis of `Y`) and `Concat`
//! (stacking the layers' final states), and `nn.Linear` as `MatMul` + `Add`
//! (or `Gemm`), optionally followed by `Softmax`/`Sigmoid`. The importer runs
//! through the graph once, giving each value an abstract meaning (the input
//! sequence, layer `l`'s outputs, a slice of a state input, a constant, ...),
//! and refuses any node whose meaning it cannot establish — naming the node
//! and pointing to `--backend ort`, which runs anything.

use std::collections::HashMap;
use std::path::Path;

use super::cells::{
    Cell, HeadActivation, HeadWeights, LayerWeights, NativeModel, RnnActivation, StateNames,
};
use crate::onnx::{Dim, Model, Node, Tensor};
use crate::{Error, Result};

/// What a value in the graph stands for.
#[derive(Debug, Clone)]
enum Sym {
    /// A constant tensor (initializer or `Constant` node).
    Const(Tensor),
    /// The sequence after `layer` recurrent layers (0 = the graph input), with
    /// its rank (2 `[T,F]`, 3 `[T,1,F]`, or 4 `[T,1,1,H]` straight out of a node).
    Seq { layers: usize, rank: usize },
    /// Graph state input `root` (0 = h, 1 = c), whole (`None`) or one layer.
    StateIn { root: usize, layer: Option<usize> },
    /// Final states of these layers, stacked along axis 0 (`[n,1,H]`).
    StateOut { root: usize, layers: Vec<usize> },
    /// Dense head output before activation.
    Linear {
        w: Vec<f32>,
        b: Option<Vec<f32>>,
        inp: usize,
        out: usize,
        rank: usize,
    },
    /// Dense head after its activation.
    Activated {
        w: Vec<f32>,
        b: Vec<f32>,
        inp: usize,
        out: usize,
        act: HeadActivation,
    },
}

struct Importer<'a> {
    path: &'a Path,
    model: &'a Model,
    syms: HashMap<String, Sym>,
    layers: Vec<LayerWeights>,
    /// Graph state inputs: `[h, c]` names.
    state_inputs: [Option<String>; 2],
}

/// Reads `path` and builds a [`NativeModel`].
///
/// # Errors
/// [`Error::Io`]/[`Error::InvalidModel`] for an unreadable file;
/// [`Error::UnsupportedModel`] naming the node when the graph is not a
/// unidirectional RNN/LSTM/GRU stack with an optional dense head.
pub fn import_onnx(path: &Path) -> Result<NativeModel> {
    let model = Model::load(path)?;
    let mut imp = Importer {
        path,
        model: &model,
        syms: HashMap::new(),
        layers: Vec::new(),
        state_inputs: [None, None],
    };
    imp.run()
}

fn node_label(n: &Node) -> String {
    if n.name.is_empty() {
        n.op_type.clone()
    } else {
        format!("{} ({})", n.name, n.op_type)
    }
}

fn ints_of(t: &Tensor) -> Option<Vec<i64>> {
    t.as_i64()
        .map(<[i64]>::to_vec)
        .or_else(|| t.as_i32().map(|v| v.iter().map(|&x| x as i64).collect()))
}

impl Importer<'_> {
    fn unsupported(&self, node: &Node, reason: impl Into<String>) -> Error {
        Error::UnsupportedModel {
            path: self.path.to_path_buf(),
            node: node_label(node),
            reason: reason.into(),
        }
    }

    fn graph_unsupported(&self, what: &str, reason: impl Into<String>) -> Error {
        Error::UnsupportedModel {
            path: self.path.to_path_buf(),
            node: what.to_string(),
            reason: reason.into(),
        }
    }

    fn sym(&self, node: &Node, i: usize) -> Result<Sym> {
        let name = node
            .inputs
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.unsupported(node, format!("input {i} is missing")))?;
        self.syms.get(name).cloned().ok_or_else(|| {
            self.unsupported(
                node,
                format!("input `{name}` comes from an unsupported part of the graph"),
            )
        })
    }

    fn opt_const(&self, node: &Node, i: usize) -> Result<Option<Tensor>> {
        match node.inputs.get(i).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(_) => match self.sym(node, i)? {
                Sym::Const(t) => Ok(Some(t)),
                _ => Err(self.unsupported(node, format!("input {i} must be a constant"))),
            },
        }
    }

    fn const_f32(&self, node: &Node, i: usize) -> Result<Tensor> {
        let t = self
            .opt_const(node, i)?
            .ok_or_else(|| self.unsupported(node, format!("input {i} is missing")))?;
        if t.as_f32().is_none() {
            return Err(self.unsupported(node, format!("input {i} must be float32")));
        }
        Ok(t)
    }

    fn set(&mut self, node: &Node, i: usize, s: Sym) {
        if let Some(name) = node.outputs.get(i).filter(|n| !n.is_empty()) {
            self.syms.insert(name.clone(), s);
        }
    }

    fn run(&mut self) -> Result<NativeModel> {
        let g = &self.model.graph;
        for t in &g.initializers {
            self.syms.insert(t.name.clone(), Sym::Const(t.clone()));
        }
        let inputs: Vec<_> = g
            .inputs
            .iter()
            .filter(|v| g.initializer(&v.name).is_none())
            .collect();
        let x = inputs
            .first()
            .ok_or_else(|| self.graph_unsupported("graph", "it has no inputs"))?;
        let x_rank = x.shape.len();
        if !(x_rank == 2 || x_rank == 3) {
            return Err(self.graph_unsupported(
                &x.name,
                format!("the input must be [T, 1, I] or [T, I], it has rank {x_rank}"),
            ));
        }
        if x_rank == 3 && !matches!(x.shape[1], Dim::Fixed(1) | Dim::Param(_) | Dim::Unknown) {
            return Err(self.graph_unsupported(&x.name, "batch size must be 1 (or dynamic)"));
        }
        self.syms.insert(
            x.name.clone(),
            Sym::Seq {
                layers: 0,
                rank: x_rank,
            },
        );
        // Remaining inputs are states; which one is h and which c is learnt from the nodes.
        let state_candidates: Vec<String> = inputs[1..].iter().map(|v| v.name.clone()).collect();
        for name in &state_candidates {
            self.syms.insert(
                name.clone(),
                Sym::StateIn {
                    root: usize::MAX,
                    layer: None,
                },
            );
        }

        let nodes = g.nodes.clone();
        for node in &nodes {
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(
                    self.unsupported(node, format!("custom operator domain `{}`", node.domain))
                );
            }
            self.node(node)?;
        }

        // Outputs: the first that is not a state is the result.
        let mut result = None;
        let mut state_outs: [Option<String>; 2] = [None, None];
        let n_layers = self.layers.len();
        for out in &g.outputs {
            let s = self.syms.get(&out.name).cloned().ok_or_else(|| {
                self.graph_unsupported(
                    &out.name,
                    "graph output from an unsupported part of the graph",
                )
            })?;
            match s {
                Sym::StateOut { root, layers } => {
                    if layers != (0..n_layers).collect::<Vec<_>>() {
                        return Err(self.graph_unsupported(
                            &out.name,
                            format!("state output stacks layers {layers:?}, expected all {n_layers} in order"),
                        ));
                    }
                    state_outs[root] = Some(out.name.clone());
                }
                other if result.is_none() => result = Some((out.name.clone(), other)),
                _ => {
                    return Err(self.graph_unsupported(&out.name, "more than one non-state output"));
                }
            }
        }
        let (rname, rsym) =
            result.ok_or_else(|| self.graph_unsupported("graph", "no output besides states"))?;
        if n_layers == 0 {
            return Err(self.graph_unsupported("graph", "no RNN, LSTM or GRU node"));
        }
        let head = match rsym {
            Sym::Seq { layers, .. } if layers == n_layers => None,
            Sym::Linear { w, b, inp, out, .. } => Some(HeadWeights {
                input_size: inp,
                output_size: out,
                w,
                b: b.unwrap_or_else(|| vec![0.0; out]),
                activation: HeadActivation::None,
            }),
            Sym::Activated {
                w,
                b,
                inp,
                out,
                act,
            } => Some(HeadWeights {
                input_size: inp,
                output_size: out,
                w,
                b,
                activation: act,
            }),
            _ => {
                return Err(self.graph_unsupported(
                    &rname,
                    "the output must be the last layer's sequence or a dense head on it",
                ));
            }
        };
        let name_pair = |root: usize, default: [&str; 2]| -> [String; 2] {
            [
                self.state_inputs[root]
                    .clone()
                    .unwrap_or_else(|| default[0].into()),
                state_outs[root]
                    .clone()
                    .unwrap_or_else(|| default[1].into()),
            ]
        };
        let has_c = self.layers[0].cell.has_cell_state();
        let names = StateNames {
            h: name_pair(0, ["h0", "hn"]),
            c: has_c.then(|| name_pair(1, ["c0", "cn"])),
        };
        NativeModel::new(std::mem::take(&mut self.layers), head, names)
    }

    fn node(&mut self, node: &Node) -> Result<()> {
        match node.op_type.as_str() {
            "Constant" => {
                let t = node.attr_tensor("value").ok_or_else(|| {
                    self.unsupported(node, "only tensor-valued Constant nodes are supported")
                })?;
                self.set(node, 0, Sym::Const(t.clone()));
            }
            "Identity" | "Dropout" => {
                let s = self.sym(node, 0)?;
                self.set(node, 0, s);
            }
            "Slice" => self.slice(node)?,
            "Gather" => self.gather(node)?,
            "Squeeze" | "Unsqueeze" | "Reshape" | "Flatten" => self.reshape(node)?,
            "Transpose" => {
                let s = self.sym(node, 0)?;
                let perm = node
                    .attr_ints("perm")
                    .map(<[i64]>::to_vec)
                    .unwrap_or_default();
                match s {
                    // Swapping the two unit axes of a [T,1,1,H] is a no-op.
                    Sym::Seq { rank: 4, .. } if perm == [0, 2, 1, 3] => self.set(node, 0, s),
                    _ => return Err(self.unsupported(node, format!("Transpose {perm:?} (batch-first or bidirectional layouts cannot stream)"))),
                }
            }
            "Concat" => self.concat(node)?,
            "RNN" | "LSTM" | "GRU" => self.recurrent(node)?,
            "MatMul" | "Gemm" => self.linear(node)?,
            "Add" => self.add(node)?,
            "Softmax" | "Sigmoid" => self.activation(node)?,
            other => {
                return Err(self.unsupported(
                    node,
                    format!("operator {other} is not part of a recurrent stack"),
                ));
            }
        }
        Ok(())
    }

    fn axes(&self, node: &Node, input: usize) -> Result<Option<Vec<i64>>> {
        if let Some(a) = node.attr_ints("axes") {
            return Ok(Some(a.to_vec()));
        }
        Ok(self.opt_const(node, input)?.and_then(|t| ints_of(&t)))
    }

    fn slice(&mut self, node: &Node) -> Result<()> {
        let data = self.sym(node, 0)?;
        let (starts, ends, axes) = if node.inputs.len() >= 3 {
            let get = |i| -> Result<Option<Vec<i64>>> {
                Ok(self.opt_const(node, i)?.and_then(|t| ints_of(&t)))
            };
            (get(1)?, get(2)?, get(3)?.or(Some(vec![0])))
        } else {
            (
                node.attr_ints("starts").map(<[i64]>::to_vec),
                node.attr_ints("ends").map(<[i64]>::to_vec),
                Some(node.attr_ints("axes").map_or(vec![0], <[i64]>::to_vec)),
            )
        };
        match (data, starts, ends, axes) {
            (Sym::StateIn { root, layer: None }, Some(s), Some(e), Some(a))
                if a == [0] && s.len() == 1 && e.len() == 1 && e[0] == s[0] + 1 && s[0] >= 0 =>
            {
                self.set(
                    node,
                    0,
                    Sym::StateIn {
                        root,
                        layer: Some(s[0] as usize),
                    },
                );
                Ok(())
            }
            _ => Err(self.unsupported(
                node,
                "only slicing one layer out of a state input is supported",
            )),
        }
    }

    fn gather(&mut self, node: &Node) -> Result<()> {
        let data = self.sym(node, 0)?;
        let idx = self.opt_const(node, 1)?.and_then(|t| ints_of(&t));
        let axis = node.attr_int("axis").unwrap_or(0);
        match (data, idx) {
            (Sym::StateIn { root, layer: None }, Some(i))
                if axis == 0 && i.len() == 1 && i[0] >= 0 =>
            {
                self.set(
                    node,
                    0,
                    Sym::StateIn {
                        root,
                        layer: Some(i[0] as usize),
                    },
                );
                Ok(())
            }
            _ => Err(self.unsupported(
                node,
                "only gathering one layer out of a state input is supported",
            )),
        }
    }

    fn reshape(&mut self, node: &Node) -> Result<()> {
        let s = self.sym(node, 0)?;
        let op = node.op_type.as_str();
        let out = match (op, &s) {
            // Y [T,1,1,H] -> [T,1,H] (or [T,H]).
            ("Squeeze", Sym::Seq { layers, rank }) => {
                let axes = self.axes(node, 1)?;
                let removed = axes.map_or(*rank - 1, |a| a.len());
                if removed >= *rank - 1 || axes_touch_time(&self.axes(node, 1)?) {
                    return Err(self.unsupported(node, "squeezing the time or feature axis"));
                }
                Sym::Seq {
                    layers: *layers,
                    rank: rank - removed,
                }
            }
            ("Unsqueeze", Sym::Seq { layers, rank }) => {
                let n = self.axes(node, 1)?.map_or(1, |a| a.len());
                if axes_touch_time(&self.axes(node, 1)?) {
                    return Err(self.unsupported(node, "unsqueezing before the time axis"));
                }
                Sym::Seq {
                    layers: *layers,
                    rank: rank + n,
                }
            }
            // A one-layer state [1,1,H] passes through reshapes unchanged in meaning.
            (_, Sym::StateIn { .. } | Sym::StateOut { .. }) => s.clone(),
            ("Reshape" | "Flatten", Sym::Seq { .. }) => {
                return Err(self.unsupported(
                    node,
                    "reshaping the sequence (only Squeeze/Unsqueeze of unit axes is supported)",
                ));
            }
            (_, Sym::Const(_)) => {
                return Err(self.unsupported(node, "constant folding is not supported"));
            }
            _ => return Err(self.unsupported(node, "unexpected operand")),
        };
        self.set(node, 0, out);
        Ok(())
    }

    fn concat(&mut self, node: &Node) -> Result<()> {
        let axis = node.attr_int("axis").unwrap_or(0);
        let mut root0 = None;
        let mut all = Vec::new();
        for i in 0..node.inputs.len() {
            match self.sym(node, i)? {
                Sym::StateOut { root, layers } if axis == 0 && root0.is_none_or(|r| r == root) => {
                    root0 = Some(root);
                    all.extend(layers);
                }
                _ => {
                    return Err(self.unsupported(
                        node,
                        "only stacking final states along axis 0 is supported",
                    ));
                }
            }
        }
        let root = root0.ok_or_else(|| self.unsupported(node, "empty Concat"))?;
        self.set(node, 0, Sym::StateOut { root, layers: all });
        Ok(())
    }

    fn recurrent(&mut self, node: &Node) -> Result<()> {
        let l = self.layers.len();
        let direction = node.attr_string("direction").unwrap_or("forward");
        if direction != "forward" {
            return Err(self.unsupported(
                node,
                format!("direction `{direction}`: a {direction} layer needs the whole sequence before its first output, so it cannot stream"),
            ));
        }
        if node.attr_int("layout").unwrap_or(0) != 0 {
            return Err(self.unsupported(node, "layout=1 (batch-first) is not supported"));
        }
        if node.attr("clip").is_some() {
            return Err(self.unsupported(node, "cell clipping is not supported"));
        }
        if node.attr_int("input_forget").unwrap_or(0) != 0 {
            return Err(self.unsupported(node, "input_forget=1 is not supported"));
        }
        match self.sym(node, 0)? {
            Sym::Seq { layers, rank: 3 } if layers == l => {}
            Sym::Seq { layers, rank } => {
                return Err(self.unsupported(
                    node,
                    format!("its input is the output of layer {layers} (rank {rank}); expected layer {l}'s [T,1,F] sequence"),
                ));
            }
            _ => return Err(self.unsupported(node, "its input is not the sequence")),
        }
        let acts = node.attr_strings("activations");
        let cell = match node.op_type.as_str() {
            "RNN" => match acts.as_deref() {
                None | Some(["Tanh"]) => Cell::Rnn(RnnActivation::Tanh),
                Some(["Relu"]) => Cell::Rnn(RnnActivation::Relu),
                Some(a) => return Err(self.unsupported(node, format!("activations {a:?}"))),
            },
            "LSTM" => {
                if !matches!(acts.as_deref(), None | Some(["Sigmoid", "Tanh", "Tanh"])) {
                    return Err(self.unsupported(node, format!("activations {acts:?}")));
                }
                let p = self.opt_const(node, 7)?;
                Cell::Lstm {
                    peepholes: p.map(|t| t.as_f32().unwrap_or(&[]).to_vec()),
                }
            }
            _ => {
                if !matches!(acts.as_deref(), None | Some(["Sigmoid", "Tanh"])) {
                    return Err(self.unsupported(node, format!("activations {acts:?}")));
                }
                Cell::Gru {
                    linear_before_reset: node.attr_int("linear_before_reset").unwrap_or(0) != 0,
                }
            }
        };
        let w = self.const_f32(node, 1)?;
        let r = self.const_f32(node, 2)?;
        let gates = cell.gates();
        let h = r.dims.get(2).copied().unwrap_or(0) as usize;
        if w.dims.len() != 3
            || r.dims.len() != 3
            || w.dims[0] != 1
            || h == 0
            || r.dims[1] as usize != gates * h
        {
            return Err(self.unsupported(
                node,
                format!(
                    "W {:?} / R {:?} do not have the [1, {gates}*H, *] form",
                    w.dims, r.dims
                ),
            ));
        }
        if let Some(hs) = node.attr_int("hidden_size")
            && hs as usize != h
        {
            return Err(self.unsupported(node, format!("hidden_size {hs} but R has H = {h}")));
        }
        let input_size = w.dims[2] as usize;
        let b = match self.opt_const(node, 3)? {
            Some(t) => t.as_f32().unwrap_or(&[]).to_vec(),
            None => vec![0.0; 2 * gates * h],
        };
        if node.inputs.get(4).is_some_and(|s| !s.is_empty()) {
            return Err(self.unsupported(
                node,
                "sequence_lens is not supported (streams have no fixed length)",
            ));
        }
        for (slot, root) in [(5usize, 0usize), (6, 1)] {
            if root == 1 && !cell.has_cell_state() {
                continue;
            }
            if let Some(name) = node.inputs.get(slot).filter(|s| !s.is_empty()) {
                self.bind_state(node, name, root, l)?;
            }
        }
        self.layers.push(LayerWeights {
            cell,
            input_size,
            hidden_size: h,
            w: w.as_f32().unwrap_or(&[]).to_vec(),
            r: r.as_f32().unwrap_or(&[]).to_vec(),
            b,
        });
        self.set(
            node,
            0,
            Sym::Seq {
                layers: l + 1,
                rank: 4,
            },
        );
        self.set(
            node,
            1,
            Sym::StateOut {
                root: 0,
                layers: vec![l],
            },
        );
        self.set(
            node,
            2,
            Sym::StateOut {
                root: 1,
                layers: vec![l],
            },
        );
        Ok(())
    }

    /// Checks that the initial state of layer `l` is slice `l` of a graph input,
    /// and records that input as state root `root`.
    fn bind_state(&mut self, node: &Node, name: &str, root: usize, l: usize) -> Result<()> {
        let s = self.syms.get(name).cloned();
        let (input_name, layer) = match s {
            Some(Sym::StateIn { layer, .. }) => (self.root_input_of(name), layer),
            _ => {
                return Err(self.unsupported(
                    node,
                    format!("initial state `{name}` is not taken from a graph input"),
                ));
            }
        };
        let input_name = input_name.ok_or_else(|| {
            self.unsupported(node, format!("cannot trace `{name}` to a graph input"))
        })?;
        if layer.unwrap_or(0) != l {
            return Err(self.unsupported(
                node,
                format!("layer {l} starts from layer {:?} of `{input_name}`", layer),
            ));
        }
        match &self.state_inputs[root] {
            Some(prev) if *prev != input_name => {
                return Err(self.unsupported(
                    node,
                    format!(
                        "layers take their state from different inputs (`{prev}`, `{input_name}`)"
                    ),
                ));
            }
            _ => self.state_inputs[root] = Some(input_name),
        }
        Ok(())
    }

    /// The graph input a `StateIn` value derives from.
    fn root_input_of(&self, value: &str) -> Option<String> {
        let g = &self.model.graph;
        let mut cur = value.to_string();
        for _ in 0..g.nodes.len() + 1 {
            if g.inputs.iter().any(|v| v.name == cur) {
                return Some(cur);
            }
            let producer = g.nodes.iter().find(|n| n.outputs.contains(&cur))?;
            cur = producer.inputs.first()?.clone();
        }
        None
    }

    fn linear(&mut self, node: &Node) -> Result<()> {
        let n_layers = self.layers.len();
        let rank = match self.sym(node, 0)? {
            Sym::Seq { layers, rank } if layers == n_layers && layers > 0 && rank <= 3 => rank,
            _ => {
                return Err(
                    self.unsupported(node, "a dense layer must follow the last recurrent layer")
                );
            }
        };
        let w = self.const_f32(node, 1)?;
        if w.dims.len() != 2 {
            return Err(self.unsupported(node, format!("weight of shape {:?} is not 2-D", w.dims)));
        }
        let data = w.as_f32().unwrap_or(&[]);
        let (r, c) = (w.dims[0] as usize, w.dims[1] as usize);
        let trans_b = node.op_type == "Gemm" && node.attr_int("transB").unwrap_or(0) != 0;
        if node.op_type == "Gemm"
            && (node.attr_int("transA").unwrap_or(0) != 0
                || node.attr_float("alpha").unwrap_or(1.0) != 1.0
                || node.attr_float("beta").unwrap_or(1.0) != 1.0)
        {
            return Err(self.unsupported(node, "Gemm with transA, alpha or beta"));
        }
        let (inp, out, wv) = if trans_b {
            let mut t = vec![0.0; r * c];
            for i in 0..r {
                for j in 0..c {
                    t[j * r + i] = data[i * c + j];
                }
            }
            (c, r, t)
        } else {
            (r, c, data.to_vec())
        };
        let b = match self.opt_const(node, 2)? {
            Some(t) => Some(self.bias_vec(node, &t, out)?),
            None => None,
        };
        self.set(
            node,
            0,
            Sym::Linear {
                w: wv,
                b,
                inp,
                out,
                rank,
            },
        );
        Ok(())
    }

    fn bias_vec(&self, node: &Node, t: &Tensor, out: usize) -> Result<Vec<f32>> {
        let v = t
            .as_f32()
            .ok_or_else(|| self.unsupported(node, "bias must be float32"))?;
        match v.len() {
            n if n == out => Ok(v.to_vec()),
            1 => Ok(vec![v[0]; out]),
            n => Err(self.unsupported(node, format!("bias of {n} values for {out} outputs"))),
        }
    }

    fn add(&mut self, node: &Node) -> Result<()> {
        let (a, b) = (self.sym(node, 0)?, self.sym(node, 1)?);
        let (lin, bias) = match (a, b) {
            (
                Sym::Linear {
                    w,
                    b: None,
                    inp,
                    out,
                    rank,
                },
                Sym::Const(t),
            )
            | (
                Sym::Const(t),
                Sym::Linear {
                    w,
                    b: None,
                    inp,
                    out,
                    rank,
                },
            ) => ((w, inp, out, rank), t),
            _ => {
                return Err(
                    self.unsupported(node, "only adding a bias to a dense layer is supported")
                );
            }
        };
        let (w, inp, out, rank) = lin;
        let b = self.bias_vec(node, &bias, out)?;
        self.set(
            node,
            0,
            Sym::Linear {
                w,
                b: Some(b),
                inp,
                out,
                rank,
            },
        );
        Ok(())
    }

    fn activation(&mut self, node: &Node) -> Result<()> {
        let (w, b, inp, out, rank) = match self.sym(node, 0)? {
            Sym::Linear {
                w,
                b,
                inp,
                out,
                rank,
            } => (w, b.unwrap_or_else(|| vec![0.0; out]), inp, out, rank),
            _ => return Err(self.unsupported(node, "activation must follow the dense layer")),
        };
        let act = if node.op_type == "Softmax" {
            let axis = node.attr_int("axis").unwrap_or(-1);
            // The last axis of the [T,1,O] / [T,O] scores.
            if !(axis == -1 || axis == rank as i64 - 1) {
                return Err(self.unsupported(node, format!("softmax over axis {axis}")));
            }
            HeadActivation::Softmax
        } else {
            HeadActivation::Sigmoid
        };
        self.set(
            node,
            0,
            Sym::Activated {
                w,
                b,
                inp,
                out,
                act,
            },
        );
        Ok(())
    }
}

fn axes_touch_time(axes: &Option<Vec<i64>>) -> bool {
    axes.as_ref().is_some_and(|a| a.contains(&0))
}
