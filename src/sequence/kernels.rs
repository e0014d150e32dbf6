//! Dense kernels of the native backend: a register-blocked `C += A * B`
//! over packed weights, and vectorisable activations.
//!
//! Determinism is a design goal here, not an accident: every output element
//! is accumulated as `c = fma(a[k], b[k], c)` for `k = 0, 1, ...` in that
//! order, whatever the block it falls in (full register tile or tail). So a
//! row of `A` gives the same bits whether it is multiplied alone, in a chunk of
//! frames, or in a batch of streams — which is what makes the native backend's
//! output independent of chunking and batching.
//!
//! The instruction set is chosen once at run time ([`Isa::detect`]): AVX-512F,
//! AVX2+FMA, or a portable path (no FMA, plain multiply-add). Results differ in
//! the last bits between ISAs, never between calls on one machine.

pub use crate::simd::Isa;

/// Width of the column panels [`Packed`] uses on each ISA.
fn panel(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 128,
        Isa::Avx2 => 32,
        Isa::Portable => 16,
    }
}
/// A `k x n` matrix (the right-hand side of `C += A B`) packed for the
/// kernels: column panels of `P` columns (128 on AVX-512), each stored k-major
/// and contiguous, the last one zero-padded. Inner loops then stream through
/// memory in order, which keeps the hardware prefetchers ahead even when the
/// weights live in L2 (a batch-1 step is bound by how fast weights arrive).
#[derive(Debug, Clone)]
pub struct Packed {
    isa: Isa,
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl Packed {
    /// Packs `b`, `k x n` row-major, for `isa`.
    pub fn new(isa: Isa, b: &[f32], k: usize, n: usize) -> Packed {
        assert_eq!(b.len(), k * n, "Packed::new: b is not k x n");
        let p = panel(isa);
        let panels = n.div_ceil(p);
        let mut data = vec![0.0; panels * k * p];
        for pi in 0..panels {
            let j0 = pi * p;
            let w = (n - j0).min(p);
            for kk in 0..k {
                let dst = &mut data[(pi * k + kk) * p..(pi * k + kk) * p + w];
                dst.copy_from_slice(&b[kk * n + j0..kk * n + j0 + w]);
            }
        }
        Packed { isa, k, n, data }
    }

    /// Rows (`k`).
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns (`n`).
    pub fn cols(&self) -> usize {
        self.n
    }

    /// The instruction set the panels are laid out for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `c[i][j] += sum_kk a[i][kk] * self[kk][j]` for `i < m`, with row strides
    /// `lda` for `a` and `ldc` for `c`.
    ///
    /// # Panics
    /// If `a` or `c` is too short for `m` rows (a programming error).
    pub fn gemm_acc(&self, a: &[f32], lda: usize, m: usize, c: &mut [f32], ldc: usize) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(a.len() >= (m - 1) * lda + k, "gemm: a too short");
        assert!(c.len() >= (m - 1) * ldc + n, "gemm: c too short");
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` only returns Avx512 when the CPU has avx512f
            // and fma; the asserts above bound every access.
            Isa::Avx512 => unsafe { gemm_avx512(a, lda, m, k, &self.data, n, c, ldc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for avx2 and fma.
            Isa::Avx2 => unsafe { gemm_avx2(a, lda, m, k, &self.data, n, c, ldc) },
            _ => gemm_portable(a, lda, m, k, &self.data, n, c, ldc),
        }
    }
}

/// Portable kernel: one row at a time, one 16-column panel at a time, plain
/// multiply-add (no FMA on the baseline ISA).
#[allow(clippy::too_many_arguments)]
fn gemm_portable(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    packed: &[f32],
    n: usize,
    c: &mut [f32],
    ldc: usize,
) {
    const P: usize = 16;
    for (pi, panel) in packed.chunks_exact(k * P).enumerate() {
        let j0 = pi * P;
        let w = (n - j0).min(P);
        for i in 0..m {
            let mut acc = [0f32; P];
            acc[..w].copy_from_slice(&c[i * ldc + j0..i * ldc + j0 + w]);
            let arow = &a[i * lda..i * lda + k];
            for (kk, &av) in arow.iter().enumerate() {
                let brow: &[f32; P] = panel[kk * P..(kk + 1) * P].try_into().unwrap();
                for (x, &bv) in acc.iter_mut().zip(brow) {
                    *x += av * bv;
                }
            }
            c[i * ldc + j0..i * ldc + j0 + w].copy_from_slice(&acc[..w]);
        }
    }
}

/// Hand-vectorised x86-64 kernels over packed panels of `NV` vectors: blocks
/// of `R` rows share each loaded panel row (R x NV independent accumulators),
/// and a leftover row runs alone (NV independent FMA chains, so a batch-1 step
/// is not bound by FMA latency). Every element is accumulated with one fused
/// multiply-add per `k`, in order, so its bits do not depend on the block it
/// falls in.
macro_rules! simd_gemm {
    ($name:ident, $feat:literal, $vec:ty, $lanes:expr, $nv:expr, $r:expr,
     $load:ident, $store:ident, $set1:ident, $fmadd:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        unsafe fn $name(
            a: &[f32],
            lda: usize,
            m: usize,
            k: usize,
            packed: &[f32],
            n: usize,
            c: &mut [f32],
            ldc: usize,
        ) {
            use std::arch::x86_64::*;
            const L: usize = $lanes;
            const NV: usize = $nv;
            const P: usize = L * NV;
            const R: usize = $r;
            let ap = a.as_ptr();
            let cp = c.as_mut_ptr();
            // Rows of `rows` starting at `i`, into panel `panel` at column `j0` (w valid columns).
            macro_rules! block {
                ($rows:expr, $i:expr, $panel:expr, $j0:expr, $w:expr) => {{
                    let mut acc: [[$vec; NV]; $rows] = [[$set1(0.0); NV]; $rows];
                    let mut tmp = [0f32; P];
                    for r in 0..$rows {
                        let crow = cp.add(($i + r) * ldc + $j0);
                        if $w == P {
                            for v in 0..NV {
                                acc[r][v] = $load(crow.add(v * L));
                            }
                        } else {
                            tmp[..$w].copy_from_slice(std::slice::from_raw_parts(crow, $w));
                            tmp[$w..].fill(0.0);
                            for v in 0..NV {
                                acc[r][v] = $load(tmp.as_ptr().add(v * L));
                            }
                        }
                    }
                    for kk in 0..k {
                        let brow = $panel.add(kk * P);
                        if $rows == 1 {
                            // A lone row is bound by how fast the panel streams in
                            // from L2: ask for it a few rows ahead.
                            let ahead = brow.add(8 * P) as *const i8;
                            for line in 0..(P * 4 / 64) {
                                _mm_prefetch::<_MM_HINT_T0>(ahead.add(line * 64));
                            }
                        }
                        let mut bv = [$set1(0.0); NV];
                        for v in 0..NV {
                            bv[v] = $load(brow.add(v * L));
                        }
                        for r in 0..$rows {
                            let av = $set1(*ap.add(($i + r) * lda + kk));
                            for v in 0..NV {
                                acc[r][v] = $fmadd(av, bv[v], acc[r][v]);
                            }
                        }
                    }
                    for r in 0..$rows {
                        let crow = cp.add(($i + r) * ldc + $j0);
                        if $w == P {
                            for v in 0..NV {
                                $store(crow.add(v * L), acc[r][v]);
                            }
                        } else {
                            for v in 0..NV {
                                $store(tmp.as_mut_ptr().add(v * L), acc[r][v]);
                            }
                            std::slice::from_raw_parts_mut(crow, $w).copy_from_slice(&tmp[..$w]);
                        }
                    }
                }};
            }
            // SAFETY: the caller checked that a covers m rows of k (stride lda),
            // c covers m rows of n (stride ldc), and packed holds ceil(n/P) panels of k x P.
            unsafe {
                for (pi, panel) in packed.chunks_exact(k * P).enumerate() {
                    let j0 = pi * P;
                    let w = (n - j0).min(P);
                    let pp = panel.as_ptr();
                    let mut i = 0;
                    while i + R <= m {
                        block!(R, i, pp, j0, w);
                        i += R;
                    }
                    while i < m {
                        block!(1, i, pp, j0, w);
                        i += 1;
                    }
                }
            }
        }
    };
}

simd_gemm!(
    gemm_avx512,
    "avx512f,fma",
    __m512,
    16,
    8,
    2,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps
);
simd_gemm!(
    gemm_avx2,
    "avx2,fma",
    __m256,
    8,
    4,
    2,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps
);

pub use crate::simd::exp;

/// Logistic sigmoid.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent, `1 - 2 / (e^{2x} + 1)`: absolute error below 1e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_std() {
        let mut worst = (0f32, 0f32, 0f32);
        for i in -20000..=20000 {
            let x = i as f32 * 0.001;
            let e = (exp(x) - x.exp()).abs() / x.exp();
            let s = (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs();
            let t = (tanh(x) - x.tanh()).abs();
            worst = (worst.0.max(e), worst.1.max(s), worst.2.max(t));
        }
        assert!(worst.0 < 5e-7, "exp rel {}", worst.0);
        assert!(worst.1 < 2e-7, "sigmoid abs {}", worst.1);
        assert!(worst.2 < 3e-7, "tanh abs {}", worst.2);
        assert_eq!(exp(-1000.0), exp(-87.3));
        assert!(exp(1000.0).is_finite());
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }

    fn naive(a: &[f32], m: usize, k: usize, b: &[f32], n: usize, c: &mut [f32]) {
        for i in 0..m {
            for j in 0..n {
                let mut x = c[i * n + j] as f64;
                for kk in 0..k {
                    x += a[i * k + kk] as f64 * b[kk * n + j] as f64;
                }
                c[i * n + j] = x as f32;
            }
        }
    }

    #[test]
    fn gemm_matches_naive_and_rows_are_independent() {
        let isas = [Isa::Portable, Isa::detect()];
        for &(m, k, n) in &[
            (1, 3, 5),
            (4, 40, 512),
            (7, 13, 70),
            (9, 128, 100),
            (64, 40, 16),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let c0: Vec<f32> = (0..m * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let mut want = c0.clone();
            naive(&a, m, k, &b, n, &mut want);
            for isa in isas {
                let packed = Packed::new(isa, &b, k, n);
                let mut got = c0.clone();
                packed.gemm_acc(&a, k, m, &mut got, n);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{isa:?} {m}x{k}x{n}"
                    );
                }
                // Row by row gives the same bits as the whole block.
                for i in 0..m {
                    let mut row = c0[i * n..(i + 1) * n].to_vec();
                    packed.gemm_acc(&a[i * k..], k, 1, &mut row, n);
                    assert_eq!(row, got[i * n..(i + 1) * n], "{isa:?} row {i}");
                }
            }
        }
    }
}
