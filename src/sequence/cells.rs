//! The native backend: RNN, LSTM and GRU cells as ONNX defines them, stacked,
//! with an optional dense head.
//!
//! [`NativeModel`] holds the weights (immutable, shared by `Arc`);
//! [`NativeStream`] holds one stream's `h` (and `c`) and its scratch buffers;
//! [`NativeBatch`] steps many independent streams at once with one matrix
//! product per layer. A chunk of frames is processed layer by layer: the input
//! projection of all frames is one matrix product, then the recurrence runs
//! frame by frame. All arithmetic goes through [`Packed::gemm_acc`], whose
//! per-element order is fixed, so chunking and batching never change a bit.

use std::sync::Arc;

use super::kernels::{self, Isa, Packed};
use super::{State, StateTensor, Stream};
use crate::{Error, Result};

/// Nonlinearity of a vanilla RNN layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnActivation {
    /// `tanh` (ONNX and PyTorch default).
    Tanh,
    /// `max(0, x)`.
    Relu,
}

/// The recurrent cell of one layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// `h = f(W x + R h + b)`.
    Rnn(RnnActivation),
    /// LSTM with gates in ONNX order `i, o, f, c`; `peepholes` is `[p_i, p_o, p_f]`
    /// (3H values) when the model has them.
    Lstm {
        /// Peephole weights, `3 * hidden` values, or `None`.
        peepholes: Option<Vec<f32>>,
    },
    /// GRU with gates in ONNX order `z, r, h`.
    Gru {
        /// `true`: `h~ = tanh(W_h x + b_wh + r * (R_h h + b_rh))` (PyTorch);
        /// `false`: `h~ = tanh(W_h x + R_h (r * h) + b_wh + b_rh)` (ONNX default).
        linear_before_reset: bool,
    },
}

impl Cell {
    /// Number of gate blocks (`G` in the `G * hidden` weight rows).
    pub fn gates(&self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
        }
    }

    /// Whether the cell has a cell state `c` besides `h`.
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Cell::Lstm { .. })
    }
}

/// One recurrent layer's weights in the ONNX layout (`W: [G*H, I]`,
/// `R: [G*H, H]`, `B: [2*G*H] = [Wb; Rb]`), as read from a file.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// The cell.
    pub cell: Cell,
    /// Input size `I`.
    pub input_size: usize,
    /// Hidden size `H`.
    pub hidden_size: usize,
    /// `W`, `[G*H][I]` row-major.
    pub w: Vec<f32>,
    /// `R`, `[G*H][H]` row-major.
    pub r: Vec<f32>,
    /// `B`, `2*G*H` values (`Wb` then `Rb`); zeros when the model has none.
    pub b: Vec<f32>,
}

/// Final activation of the dense head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadActivation {
    /// Raw scores.
    None,
    /// Softmax over the outputs.
    Softmax,
    /// Element-wise logistic sigmoid.
    Sigmoid,
}

/// A dense layer `y = act(x W + b)` after the last recurrent layer.
#[derive(Debug, Clone)]
pub struct HeadWeights {
    /// Input size (the last layer's hidden size).
    pub input_size: usize,
    /// Output size.
    pub output_size: usize,
    /// `[input][output]` row-major (`x W` form, as `MatMul` stores it).
    pub w: Vec<f32>,
    /// `output` values.
    pub b: Vec<f32>,
    /// The activation.
    pub activation: HeadActivation,
}

/// A layer prepared for the kernels: weights transposed to `[in][out]`.
#[derive(Debug)]
struct Layer {
    cell: Cell,
    input: usize,
    hidden: usize,
    /// `W^T`, `[I][G*H]`.
    wx: Packed,
    /// Bias added to the input projection, `[G*H]`. For GRU the `h` block holds
    /// only `Wb_h` (its `Rb_h` sits with the recurrent part).
    bx: Vec<f32>,
    /// `R^T` restricted to the gates combined before the nonlinearity:
    /// `[H][G*H]` for RNN/LSTM, `[H][2H]` (z, r) for GRU.
    wh: Packed,
    /// GRU only: `R_h^T`, `[H][H]`, and `Rb_h`, `[H]`.
    wh_n: Packed,
    bh_n: Vec<f32>,
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = m[i * cols + j];
        }
    }
    t
}

impl Layer {
    fn new(lw: LayerWeights, isa: Isa) -> Result<Layer> {
        let (i, h, g) = (lw.input_size, lw.hidden_size, lw.cell.gates());
        let shape_err = |what: &str, want: usize, got: usize| {
            Error::Shape(format!("{what}: expected {want} values, got {got}"))
        };
        if lw.w.len() != g * h * i {
            return Err(shape_err("W", g * h * i, lw.w.len()));
        }
        if lw.r.len() != g * h * h {
            return Err(shape_err("R", g * h * h, lw.r.len()));
        }
        if lw.b.len() != 2 * g * h {
            return Err(shape_err("B", 2 * g * h, lw.b.len()));
        }
        if let Cell::Lstm { peepholes: Some(p) } = &lw.cell
            && p.len() != 3 * h
        {
            return Err(shape_err("P", 3 * h, p.len()));
        }
        let wx = Packed::new(isa, &transpose(&lw.w, g * h, i), i, g * h);
        let (wb, rb) = lw.b.split_at(g * h);
        let rt = transpose(&lw.r, g * h, h); // [H][G*H]
        let (bx, wh, wh_n, bh_n) = match lw.cell {
            Cell::Gru { .. } => {
                let mut bx: Vec<f32> = wb.iter().zip(rb).map(|(a, b)| a + b).collect();
                bx[2 * h..].copy_from_slice(&wb[2 * h..]);
                let mut wh = Vec::with_capacity(h * 2 * h);
                let mut wh_n = Vec::with_capacity(h * h);
                for row in rt.chunks_exact(3 * h) {
                    wh.extend_from_slice(&row[..2 * h]);
                    wh_n.extend_from_slice(&row[2 * h..]);
                }
                (
                    bx,
                    Packed::new(isa, &wh, h, 2 * h),
                    Packed::new(isa, &wh_n, h, h),
                    rb[2 * h..].to_vec(),
                )
            }
            _ => (
                wb.iter().zip(rb).map(|(a, b)| a + b).collect(),
                Packed::new(isa, &rt, h, g * h),
                Packed::new(isa, &[], 0, 0),
                Vec::new(),
            ),
        };
        Ok(Layer {
            cell: lw.cell,
            input: i,
            hidden: h,
            wx,
            bx,
            wh,
            wh_n,
            bh_n,
        })
    }

    fn gate_width(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    fn flops_per_step(&self) -> usize {
        2 * self.gate_width() * (self.input + self.hidden)
    }

    /// Advances `b` streams one step. `g` holds the input projections
    /// (`[b][G*H]`, bias and `x W^T` already accumulated); `h`, `c` are the
    /// streams' states (`[b][H]`), updated in place. `tmp` is scratch of `[b][H]`.
    /// [`Layer::recur_body`] compiled for the ISA the weights were packed
    /// for, so the element-wise gate arithmetic (and its `exp`) vectorises at
    /// full width. No FMA contraction happens in element-wise code, so the
    /// results do not depend on this choice.
    fn recur(&self, b: usize, g: &mut [f32], h: &mut [f32], c: &mut [f32], tmp: &mut [f32]) {
        match self.wx.isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the weights were packed for an ISA that `Isa::detect` found on this CPU.
            Isa::Avx512 => unsafe { self.recur_avx512(b, g, h, c, tmp) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.recur_avx2(b, g, h, c, tmp) },
            _ => self.recur_body(b, g, h, c, tmp),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn recur_avx512(
        &self,
        b: usize,
        g: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
        tmp: &mut [f32],
    ) {
        self.recur_body(b, g, h, c, tmp)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn recur_avx2(
        &self,
        b: usize,
        g: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
        tmp: &mut [f32],
    ) {
        self.recur_body(b, g, h, c, tmp)
    }

    #[inline(always)]
    fn recur_body(&self, b: usize, g: &mut [f32], h: &mut [f32], c: &mut [f32], tmp: &mut [f32]) {
        let hs = self.hidden;
        let gw = self.gate_width();
        match &self.cell {
            Cell::Rnn(act) => {
                self.wh.gemm_acc(h, hs, b, g, gw);
                for (hv, &gv) in h.iter_mut().zip(g.iter()) {
                    *hv = match act {
                        RnnActivation::Tanh => kernels::tanh(gv),
                        RnnActivation::Relu => gv.max(0.0),
                    };
                }
            }
            Cell::Lstm { peepholes } => {
                self.wh.gemm_acc(h, hs, b, g, gw);
                for s in 0..b {
                    let gs = &g[s * gw..(s + 1) * gw];
                    let hv = &mut h[s * hs..(s + 1) * hs];
                    let cv = &mut c[s * hs..(s + 1) * hs];
                    let (gi, rest) = gs.split_at(hs);
                    let (go, rest) = rest.split_at(hs);
                    let (gf, gc) = rest.split_at(hs);
                    match peepholes {
                        None => {
                            let gates = gi.iter().zip(go).zip(gf.iter().zip(gc));
                            for ((hv, cv), ((&gi, &go), (&gf, &gc))) in
                                hv.iter_mut().zip(cv.iter_mut()).zip(gates)
                            {
                                let i = kernels::sigmoid(gi);
                                let f = kernels::sigmoid(gf);
                                let cc = kernels::tanh(gc);
                                let o = kernels::sigmoid(go);
                                let cn = f * *cv + i * cc;
                                *cv = cn;
                                *hv = o * kernels::tanh(cn);
                            }
                        }
                        Some(p) => {
                            let (pi, rest) = p.split_at(hs);
                            let (po, pf) = rest.split_at(hs);
                            for j in 0..hs {
                                let i = kernels::sigmoid(gi[j] + pi[j] * cv[j]);
                                let f = kernels::sigmoid(gf[j] + pf[j] * cv[j]);
                                let cc = kernels::tanh(gc[j]);
                                let cn = f * cv[j] + i * cc;
                                let o = kernels::sigmoid(go[j] + po[j] * cn);
                                cv[j] = cn;
                                hv[j] = o * kernels::tanh(cn);
                            }
                        }
                    }
                }
            }
            Cell::Gru {
                linear_before_reset,
            } => {
                // z and r: [b][2H] block of g, strided by 3H.
                self.wh.gemm_acc(h, hs, b, g, gw);
                for s in 0..b {
                    let gs = &mut g[s * gw..(s + 1) * gw];
                    for v in &mut gs[..2 * hs] {
                        *v = kernels::sigmoid(*v);
                    }
                }
                let n = tmp;
                if *linear_before_reset {
                    for s in 0..b {
                        n[s * hs..(s + 1) * hs].copy_from_slice(&self.bh_n);
                    }
                    self.wh_n.gemm_acc(h, hs, b, n, hs);
                    for s in 0..b {
                        let gs = &mut g[s * gw..(s + 1) * gw];
                        let ns = &mut n[s * hs..(s + 1) * hs];
                        for j in 0..hs {
                            ns[j] = gs[2 * hs + j] + gs[hs + j] * ns[j];
                        }
                    }
                } else {
                    // r * h first, then its projection.
                    for s in 0..b {
                        let gs = &g[s * gw..(s + 1) * gw];
                        for j in 0..hs {
                            n[s * hs + j] = gs[hs + j] * h[s * hs + j];
                        }
                    }
                    // n currently holds r*h; project it into the h block of g.
                    self.wh_n.gemm_acc(n, hs, b, &mut g[2 * hs..], gw);
                    for s in 0..b {
                        let gs = &g[s * gw..(s + 1) * gw];
                        for j in 0..hs {
                            n[s * hs + j] = gs[2 * hs + j] + self.bh_n[j];
                        }
                    }
                }
                for s in 0..b {
                    let gs = &g[s * gw..(s + 1) * gw];
                    for j in 0..hs {
                        let z = gs[j];
                        let cand = kernels::tanh(n[s * hs + j]);
                        let hv = &mut h[s * hs + j];
                        *hv = (1.0 - z) * cand + z * *hv;
                    }
                }
            }
        }
    }
}

/// The dense head prepared for the kernels.
#[derive(Debug)]
struct Head {
    input: usize,
    output: usize,
    w: Packed,
    b: Vec<f32>,
    activation: HeadActivation,
}

impl Head {
    /// `out[b][O] = act(x[b][I] W + bias)`.
    fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.output).take(rows) {
            row.copy_from_slice(&self.b);
        }
        self.w.gemm_acc(x, self.input, rows, out, self.output);
        for row in out.chunks_exact_mut(self.output).take(rows) {
            activate(self.activation, row);
        }
    }
}

fn activate(act: HeadActivation, row: &mut [f32]) {
    match act {
        HeadActivation::None => {}
        HeadActivation::Sigmoid => row.iter_mut().for_each(|v| *v = kernels::sigmoid(*v)),
        HeadActivation::Softmax => {
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = kernels::exp(*v - max);
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Names of the state tensors as the ONNX graph calls them (`h0 -> hn`, `c0 -> cn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateNames {
    /// Hidden state `[input, output]` names.
    pub h: [String; 2],
    /// Cell state names (LSTM only).
    pub c: Option<[String; 2]>,
}

/// A stack of recurrent layers with an optional dense head: immutable, shared
/// by all streams (`Arc<NativeModel>`).
#[derive(Debug)]
pub struct NativeModel {
    layers: Vec<Layer>,
    head: Option<Head>,
    isa: Isa,
    names: StateNames,
}

impl NativeModel {
    /// Builds a model from weights in the ONNX layout.
    ///
    /// # Errors
    /// [`Error::Shape`] if sizes disagree between layers or with the head;
    /// [`Error::InvalidConfig`] if the stack is empty or the cells differ in
    /// whether they carry a cell state.
    pub fn new(
        layers: Vec<LayerWeights>,
        head: Option<HeadWeights>,
        names: StateNames,
    ) -> Result<Self> {
        let first = layers
            .first()
            .ok_or_else(|| Error::config("layers", "a model needs at least one recurrent layer"))?;
        let has_c = first.cell.has_cell_state();
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[1].input_size != pair[0].hidden_size {
                return Err(Error::Shape(format!(
                    "layer {} takes {} inputs but layer {l} produces {}",
                    l + 1,
                    pair[1].input_size,
                    pair[0].hidden_size
                )));
            }
        }
        if layers.iter().any(|l| l.cell.has_cell_state() != has_c) {
            return Err(Error::config(
                "layers",
                "mixing LSTM with RNN/GRU layers in one stack is not supported",
            ));
        }
        let last_h = layers.last().map_or(0, |l| l.hidden_size);
        let isa = Isa::detect();
        let head = match head {
            None => None,
            Some(hw) => {
                if hw.input_size != last_h
                    || hw.w.len() != hw.input_size * hw.output_size
                    || hw.b.len() != hw.output_size
                {
                    return Err(Error::Shape(format!(
                        "dense head {}x{} (w {} values, b {}) does not fit hidden size {last_h}",
                        hw.input_size,
                        hw.output_size,
                        hw.w.len(),
                        hw.b.len()
                    )));
                }
                Some(Head {
                    input: hw.input_size,
                    output: hw.output_size,
                    w: Packed::new(isa, &hw.w, hw.input_size, hw.output_size),
                    b: hw.b,
                    activation: hw.activation,
                })
            }
        };
        Ok(NativeModel {
            layers: layers
                .into_iter()
                .map(|l| Layer::new(l, isa))
                .collect::<Result<_>>()?,
            head,
            isa,
            names,
        })
    }

    /// Frame size the model takes.
    pub fn input_size(&self) -> usize {
        self.layers[0].input
    }

    /// Values produced per frame.
    pub fn output_size(&self) -> usize {
        self.head
            .as_ref()
            .map_or_else(|| self.layers.last().map_or(0, |l| l.hidden), |h| h.output)
    }

    /// Number of recurrent layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Multiply-adds times two, per stream and step (recurrent layers and head).
    pub fn flops_per_step(&self) -> usize {
        self.layers.iter().map(Layer::flops_per_step).sum::<usize>()
            + self.head.as_ref().map_or(0, |h| 2 * h.input * h.output)
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// A one-line description, e.g. `LSTM 40->128 x2 + dense 12 (softmax)`.
    pub fn describe(&self) -> String {
        let l = &self.layers[0];
        let kind = match l.cell {
            Cell::Rnn(RnnActivation::Tanh) => "RNN(tanh)",
            Cell::Rnn(RnnActivation::Relu) => "RNN(relu)",
            Cell::Lstm { peepholes: None } => "LSTM",
            Cell::Lstm { .. } => "LSTM(peepholes)",
            Cell::Gru {
                linear_before_reset: true,
            } => "GRU",
            Cell::Gru { .. } => "GRU(linear_before_reset=0)",
        };
        let mut s = format!("{kind} {}->{} x{}", l.input, l.hidden, self.layers.len());
        if let Some(h) = &self.head {
            s += &format!(" + dense {} ({:?})", h.output, h.activation).to_lowercase();
        }
        s
    }

    /// A fresh stream (zero state) on this model.
    pub fn stream(self: &Arc<Self>) -> NativeStream {
        NativeStream {
            batch: NativeBatch::new(self, 1),
            bufs: [Vec::new(), Vec::new()],
            gx: Vec::new(),
        }
    }
}

/// `b` independent streams stepped together: one matrix product per layer and
/// step instead of `b` matrix-vector products, the way servers batch
/// many live streams (Triton's sequence batcher, sherpa-onnx).
///
/// Each slot's result is bit-identical to running that stream alone.
#[derive(Debug)]
pub struct NativeBatch {
    model: Arc<NativeModel>,
    b: usize,
    /// Per layer: `[b][H]`.
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    /// Scratch: gates `[b][G*H]`, GRU temp `[b][H]`.
    g: Vec<f32>,
    tmp: Vec<f32>,
}

impl NativeBatch {
    /// `b` streams, all in the initial (zero) state.
    pub fn new(model: &Arc<NativeModel>, b: usize) -> Self {
        let has_c = model.layers[0].cell.has_cell_state();
        let max_g = model
            .layers
            .iter()
            .map(|l| l.gate_width())
            .max()
            .unwrap_or(0);
        let max_h = model.layers.iter().map(|l| l.hidden).max().unwrap_or(0);
        NativeBatch {
            model: Arc::clone(model),
            b,
            h: model
                .layers
                .iter()
                .map(|l| vec![0.0; b * l.hidden])
                .collect(),
            c: if has_c {
                model
                    .layers
                    .iter()
                    .map(|l| vec![0.0; b * l.hidden])
                    .collect()
            } else {
                Vec::new()
            },
            g: vec![0.0; b * max_g],
            tmp: vec![0.0; b * max_h],
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.b
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.b == 0
    }

    /// One step of every slot: `x` is `[b][input]`, `out` is `[b][output]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the buffers have the wrong length.
    pub fn step(&mut self, x: &[f32], out: &mut [f32]) -> Result<()> {
        self.step_first(self.b, x, out)
    }

    /// One step of the first `b` slots only (`x` is `[b][input]`, `out`
    /// `[b][output]`); the other slots keep their state. A server sorts its
    /// streams by how many steps each has ready, so that the streams still
    /// stepping are always a prefix.
    ///
    /// # Errors
    /// [`Error::Shape`] if the buffers have the wrong length or `b` exceeds
    /// the slots.
    pub fn step_first(&mut self, b: usize, x: &[f32], out: &mut [f32]) -> Result<()> {
        let m = Arc::clone(&self.model);
        if b > self.b {
            return Err(Error::Shape(format!(
                "a step of {b} streams on a batch of {} slots",
                self.b
            )));
        }
        if x.len() != b * m.input_size() || out.len() != b * m.output_size() {
            return Err(Error::Shape(format!(
                "batch step of {b} streams needs x of {} and out of {} values, got {} and {}",
                b * m.input_size(),
                b * m.output_size(),
                x.len(),
                out.len()
            )));
        }
        for (l, layer) in m.layers.iter().enumerate() {
            let gw = layer.gate_width();
            let g = &mut self.g[..b * gw];
            for row in g.chunks_exact_mut(gw) {
                row.copy_from_slice(&layer.bx);
            }
            let (prev, rest) = self.h.split_at_mut(l);
            let input: &[f32] = if l == 0 {
                x
            } else {
                &prev[l - 1][..b * layer.input]
            };
            layer.wx.gemm_acc(input, layer.input, b, g, gw);
            let hs = layer.hidden;
            let c: &mut [f32] = match self.c.get_mut(l) {
                Some(c) => &mut c[..b * hs],
                None => &mut [],
            };
            layer.recur(b, g, &mut rest[0][..b * hs], c, &mut self.tmp[..b * hs]);
        }
        let last = self.h.last().map_or(&[][..], |v| {
            &v[..b * m.layers.last().map_or(0, |l| l.hidden)]
        });
        match &m.head {
            Some(head) => head.apply(last, b, out),
            None => out.copy_from_slice(last),
        }
        Ok(())
    }

    /// Grows the batch to at least `b` slots (new slots in the initial state).
    pub fn ensure_slots(&mut self, b: usize) {
        if b <= self.b {
            return;
        }
        let m = &self.model;
        for (l, layer) in m.layers.iter().enumerate() {
            self.h[l].resize(b * layer.hidden, 0.0);
            if let Some(c) = self.c.get_mut(l) {
                c.resize(b * layer.hidden, 0.0);
            }
        }
        let max_g = m.layers.iter().map(|l| l.gate_width()).max().unwrap_or(0);
        let max_h = m.layers.iter().map(|l| l.hidden).max().unwrap_or(0);
        self.g.resize(b * max_g, 0.0);
        self.tmp.resize(b * max_h, 0.0);
        self.b = b;
    }

    /// Copies the state of `stream` into slot `i` (`to_slot`) or slot `i`
    /// back into `stream` (`!to_slot`): a stream keeps its own state between
    /// the batched steps it takes part in.
    ///
    /// # Panics
    /// If `stream` runs another model or `i` is not a slot.
    pub fn exchange(&mut self, i: usize, stream: &mut NativeStream, to_slot: bool) {
        assert!(
            Arc::ptr_eq(&self.model, &stream.batch.model),
            "another model"
        );
        let s = &mut stream.batch;
        for (l, layer) in self.model.layers.iter().enumerate() {
            let hs = layer.hidden;
            let pairs = std::iter::once((&mut self.h[l], &mut s.h[l]))
                .chain(self.c.get_mut(l).zip(s.c.get_mut(l)));
            for (mine, theirs) in pairs {
                if to_slot {
                    mine[i * hs..(i + 1) * hs].copy_from_slice(&theirs[..hs]);
                } else {
                    theirs[..hs].copy_from_slice(&mine[i * hs..(i + 1) * hs]);
                }
            }
        }
    }

    /// Returns slot `i` to the initial state (its stream ended or jumped).
    pub fn reset_slot(&mut self, i: usize) {
        for (l, layer) in self.model.layers.iter().enumerate() {
            let hs = layer.hidden;
            self.h[l][i * hs..(i + 1) * hs].fill(0.0);
            if let Some(c) = self.c.get_mut(l) {
                c[i * hs..(i + 1) * hs].fill(0.0);
            }
        }
    }

    /// The state of slot `i`.
    pub fn snapshot_slot(&self, i: usize) -> State {
        let m = &self.model;
        let gather = |v: &Vec<Vec<f32>>| -> Vec<f32> {
            m.layers
                .iter()
                .zip(v)
                .flat_map(|(layer, s)| s[i * layer.hidden..(i + 1) * layer.hidden].iter().copied())
                .collect()
        };
        let shape = |m: &NativeModel| vec![m.layers.len(), 1, m.layers[0].hidden];
        let mut tensors = vec![StateTensor {
            input: m.names.h[0].clone(),
            output: m.names.h[1].clone(),
            shape: shape(m),
            data: gather(&self.h),
        }];
        if !self.c.is_empty() {
            let names = m
                .names
                .c
                .clone()
                .unwrap_or_else(|| ["c0".into(), "cn".into()]);
            tensors.push(StateTensor {
                input: names[0].clone(),
                output: names[1].clone(),
                shape: shape(m),
                data: gather(&self.c),
            });
        }
        State { tensors }
    }

    /// Sets slot `i` to a state taken by [`NativeBatch::snapshot_slot`] or
    /// [`Stream::snapshot`] on the same model.
    ///
    /// # Errors
    /// [`Error::Shape`] if the state does not fit the model.
    pub fn restore_slot(&mut self, i: usize, state: &State) -> Result<()> {
        let want = 1 + usize::from(!self.c.is_empty());
        let total: usize = self.model.layers.iter().map(|l| l.hidden).sum();
        if state.tensors.len() != want || state.tensors.iter().any(|t| t.data.len() != total) {
            return Err(Error::Shape(format!(
                "state has {} tensors of {:?} values; this model needs {want} of {total}",
                state.tensors.len(),
                state
                    .tensors
                    .iter()
                    .map(|t| t.data.len())
                    .collect::<Vec<_>>()
            )));
        }
        let scatter = |dst: &mut Vec<Vec<f32>>, src: &[f32]| {
            let mut off = 0;
            for (layer, d) in self.model.layers.iter().zip(dst.iter_mut()) {
                let hs = layer.hidden;
                d[i * hs..(i + 1) * hs].copy_from_slice(&src[off..off + hs]);
                off += hs;
            }
        };
        scatter(&mut self.h, &state.tensors[0].data);
        if want == 2 {
            scatter(&mut self.c, &state.tensors[1].data);
        }
        Ok(())
    }
}

/// One stream on a [`NativeModel`]: its state plus scratch, so that
/// processing does not allocate once the buffers have grown to the chunk size.
#[derive(Debug)]
pub struct NativeStream {
    batch: NativeBatch,
    /// Layer outputs of the current chunk, `[T][H]`: even layers write the
    /// first, odd layers the second.
    bufs: [Vec<f32>; 2],
    /// Input projections of the current chunk, `[T][G*H]`.
    gx: Vec<f32>,
}

impl NativeStream {
    /// The shared model.
    pub fn model(&self) -> &Arc<NativeModel> {
        &self.batch.model
    }
}

impl Stream for NativeStream {
    fn input_size(&self) -> usize {
        self.batch.model.input_size()
    }

    fn output_size(&self) -> usize {
        self.batch.model.output_size()
    }

    fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let m = Arc::clone(&self.batch.model);
        let i0 = m.input_size();
        if !input.len().is_multiple_of(i0) {
            return Err(Error::Shape(format!(
                "input of {} values is not a whole number of {i0}-value frames",
                input.len()
            )));
        }
        let t = input.len() / i0;
        if t == 0 {
            return Ok(());
        }
        let nb = &mut self.batch;
        let [even, odd] = &mut self.bufs;
        for (l, layer) in m.layers.iter().enumerate() {
            let gw = layer.gate_width();
            let hs = layer.hidden;
            // Layer l reads the chunk input (l = 0) or the previous layer's
            // outputs, and writes its own into the other buffer.
            let (src, dst): (&[f32], &mut Vec<f32>) = match l {
                0 => (input, even),
                _ if l % 2 == 1 => (&even[..], odd),
                _ => (&odd[..], even),
            };
            self.gx.resize(t * gw, 0.0);
            for row in self.gx.chunks_exact_mut(gw) {
                row.copy_from_slice(&layer.bx);
            }
            layer.wx.gemm_acc(src, layer.input, t, &mut self.gx, gw);
            dst.resize(t * hs, 0.0);
            let c: &mut [f32] = match nb.c.get_mut(l) {
                Some(c) => c,
                None => &mut [],
            };
            for s in 0..t {
                let g = &mut self.gx[s * gw..(s + 1) * gw];
                layer.recur(1, g, &mut nb.h[l], c, &mut nb.tmp[..hs]);
                dst[s * hs..(s + 1) * hs].copy_from_slice(&nb.h[l]);
            }
        }
        let last: &[f32] = if m.layers.len() % 2 == 1 {
            &self.bufs[0]
        } else {
            &self.bufs[1]
        };
        let start = out.len();
        match &m.head {
            Some(head) => {
                out.resize(start + t * head.output, 0.0);
                head.apply(last, t, &mut out[start..]);
            }
            None => out.extend_from_slice(last),
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.batch.reset_slot(0);
    }

    fn snapshot(&self) -> State {
        self.batch.snapshot_slot(0)
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        self.batch.restore_slot(0, state)
    }

    fn as_native(&mut self) -> Option<&mut NativeStream> {
        Some(self)
    }
}
