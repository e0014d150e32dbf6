//! Dense kernels of the native backend: a register-blocked `C += A * Bt`
//! and vectorisable activations.
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

/// Instruction set a model was prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512F (and FMA).
    Avx512,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// Anything else: scalar code the compiler vectorises with the baseline ISA.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports. `SEQREC_ISA=portable|avx2|avx512`
    /// forces a lower one (for testing and benchmarking).
    pub fn detect() -> Isa {
        let best = Self::best();
        match std::env::var("SEQREC_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") if best != Isa::Portable => Isa::Avx2,
            _ => best,
        }
    }

    #[allow(unreachable_code)]
    fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }

    /// `c[m][n] += sum_k a[m][k] * b[k][n]`, `a` is `m x k` (row stride `lda`),
    /// `b` is `k x n` row-major, `c` is `m x n` row-major.
    #[inline]
    pub fn gemm_acc(
        self,
        a: &[f32],
        lda: usize,
        m: usize,
        k: usize,
        b: &[f32],
        n: usize,
        c: &mut [f32],
    ) {
        self.gemm_acc_strided(a, lda, m, k, b, n, c, n)
    }

    /// [`Isa::gemm_acc`] with a row stride `ldc` for `c` (to update a column block).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn gemm_acc_strided(
        self,
        a: &[f32],
        lda: usize,
        m: usize,
        k: usize,
        b: &[f32],
        n: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        assert!(a.len() >= (m - 1) * lda + k, "gemm: a too short");
        assert!(b.len() >= k * n, "gemm: b too short");
        assert!(c.len() >= (m - 1) * ldc + n, "gemm: c too short");
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` only returns Avx512 when the CPU has avx512f and fma.
            Isa::Avx512 => unsafe { gemm_avx512(a, lda, m, k, b, n, c, ldc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` only returns Avx2 when the CPU has avx2 and fma.
            Isa::Avx2 => unsafe { gemm_avx2(a, lda, m, k, b, n, c, ldc) },
            _ => gemm_generic::<false, 4, 16>(a, lda, m, k, b, n, c, ldc),
        }
    }
}

/// Hand-vectorised kernels for x86-64. Register tiles of 4 rows x 4 vectors
/// (16 independent accumulators) for many rows, strips of 8 vectors for a
/// single row (8 independent FMA chains, so batch-1 steps are not bound by FMA
/// latency); the scalar tail uses `mul_add`, the same fused operation, so every
/// element sees the same rounding wherever it falls.
macro_rules! simd_gemm {
    ($name:ident, $row:ident, $feat:literal, $vec:ty, $lanes:expr, $load:ident, $store:ident, $set1:ident, $fmadd:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        unsafe fn $name(
            a: &[f32],
            lda: usize,
            m: usize,
            k: usize,
            b: &[f32],
            n: usize,
            c: &mut [f32],
            ldc: usize,
        ) {
            use std::arch::x86_64::*;
            const L: usize = $lanes;
            const TC: usize = 4 * L;
            let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
            let mut i0 = 0;
            while i0 + 4 <= m {
                let mut j0 = 0;
                while j0 + TC <= n {
                    // SAFETY: the caller checked a, b, c cover (m, k, n) with strides lda, ldc.
                    unsafe {
                        let mut acc: [[$vec; 4]; 4] = [[$set1(0.0); 4]; 4];
                        for r in 0..4 {
                            for v in 0..4 {
                                acc[r][v] = $load(cp.add((i0 + r) * ldc + j0 + v * L));
                            }
                        }
                        for kk in 0..k {
                            let brow = bp.add(kk * n + j0);
                            let bv = [
                                $load(brow),
                                $load(brow.add(L)),
                                $load(brow.add(2 * L)),
                                $load(brow.add(3 * L)),
                            ];
                            for r in 0..4 {
                                let av = $set1(*ap.add((i0 + r) * lda + kk));
                                for v in 0..4 {
                                    acc[r][v] = $fmadd(av, bv[v], acc[r][v]);
                                }
                            }
                        }
                        for r in 0..4 {
                            for v in 0..4 {
                                $store(cp.add((i0 + r) * ldc + j0 + v * L), acc[r][v]);
                            }
                        }
                    }
                    j0 += TC;
                }
                if j0 < n {
                    for r in 0..4 {
                        // SAFETY: as above.
                        unsafe {
                            $row(ap.add((i0 + r) * lda), k, bp, n, j0, cp.add((i0 + r) * ldc))
                        };
                    }
                }
                i0 += 4;
            }
            for i in i0..m {
                // SAFETY: as above.
                unsafe { $row(ap.add(i * lda), k, bp, n, 0, cp.add(i * ldc)) };
            }
        }

        /// One row of `A` (`k` values at `a`) against columns `j0..n` of `B` into `c`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        unsafe fn $row(a: *const f32, k: usize, b: *const f32, n: usize, j0: usize, c: *mut f32) {
            use std::arch::x86_64::*;
            const L: usize = $lanes;
            const W: usize = 8 * L;
            let mut j = j0;
            // SAFETY: the caller guarantees a has k values, b is k x n, c has n values.
            unsafe {
                while j + W <= n {
                    let mut acc: [$vec; 8] = [$set1(0.0); 8];
                    for v in 0..8 {
                        acc[v] = $load(c.add(j + v * L));
                    }
                    for kk in 0..k {
                        let av = $set1(*a.add(kk));
                        let brow = b.add(kk * n + j);
                        for v in 0..8 {
                            acc[v] = $fmadd(av, $load(brow.add(v * L)), acc[v]);
                        }
                    }
                    for v in 0..8 {
                        $store(c.add(j + v * L), acc[v]);
                    }
                    j += W;
                }
                while j + L <= n {
                    let mut acc = $load(c.add(j));
                    for kk in 0..k {
                        acc = $fmadd($set1(*a.add(kk)), $load(b.add(kk * n + j)), acc);
                    }
                    $store(c.add(j), acc);
                    j += L;
                }
                while j < n {
                    let mut x = *c.add(j);
                    for kk in 0..k {
                        x = (*a.add(kk)).mul_add(*b.add(kk * n + j), x);
                    }
                    *c.add(j) = x;
                    j += 1;
                }
            }
        }
    };
}

simd_gemm!(
    gemm_avx512,
    row_avx512,
    "avx512f,fma",
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps
);
simd_gemm!(
    gemm_avx2,
    row_avx2,
    "avx2,fma",
    __m256,
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps
);

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `R x C` register tiles: `R` rows of `A` share each loaded row-slice of `B`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemm_generic<const FMA: bool, const R: usize, const C: usize>(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    b: &[f32],
    n: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let mut i0 = 0;
    while i0 + R <= m {
        let mut j0 = 0;
        while j0 + C <= n {
            let mut acc = [[0f32; C]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                row.copy_from_slice(&c[(i0 + r) * ldc + j0..(i0 + r) * ldc + j0 + C]);
            }
            for kk in 0..k {
                let brow: &[f32; C] = b[kk * n + j0..kk * n + j0 + C].try_into().unwrap();
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = a[(i0 + r) * lda + kk];
                    for (x, &bv) in row.iter_mut().zip(brow) {
                        *x = madd::<FMA>(av, bv, *x);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                c[(i0 + r) * ldc + j0..(i0 + r) * ldc + j0 + C].copy_from_slice(row);
            }
            j0 += C;
        }
        if j0 < n {
            for r in 0..R {
                gemm_row::<FMA>(
                    &a[(i0 + r) * lda..],
                    k,
                    b,
                    n,
                    j0,
                    &mut c[(i0 + r) * ldc..(i0 + r) * ldc + n],
                );
            }
        }
        i0 += R;
    }
    for i in i0..m {
        gemm_row::<FMA>(&a[i * lda..], k, b, n, 0, &mut c[i * ldc..i * ldc + n]);
    }
}

/// One row of `A` against columns `j0..n` of `B`, in `C`-wide strips: the same
/// per-element operation order as the tiles.
#[inline(always)]
fn gemm_row<const FMA: bool>(a: &[f32], k: usize, b: &[f32], n: usize, j0: usize, c: &mut [f32]) {
    const S: usize = 16;
    let mut j = j0;
    while j + S <= n {
        let mut acc: [f32; S] = c[j..j + S].try_into().unwrap();
        for kk in 0..k {
            let av = a[kk];
            let brow: &[f32; S] = b[kk * n + j..kk * n + j + S].try_into().unwrap();
            for (x, &bv) in acc.iter_mut().zip(brow) {
                *x = madd::<FMA>(av, bv, *x);
            }
        }
        c[j..j + S].copy_from_slice(&acc);
        j += S;
    }
    for jj in j..n {
        let mut x = c[jj];
        for kk in 0..k {
            x = madd::<FMA>(a[kk], b[kk * n + jj], x);
        }
        c[jj] = x;
    }
}

/// `e^x` in f32, branch-free so loops over slices vectorise (Cephes `expf`
/// polynomial; relative error about 2e-7 over the clamped range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    // Round to nearest with the 1.5 * 2^23 trick: no call to floor(), so this
    // vectorises on baseline SSE2 as well.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // Cody-Waite split of ln 2 keeps the reduction exact.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

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
                let mut got = c0.clone();
                isa.gemm_acc(&a, k, m, k, &b, n, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{isa:?} {m}x{k}x{n}"
                    );
                }
                // Row by row gives the same bits as the whole block.
                for i in 0..m {
                    let mut row = c0[i * n..(i + 1) * n].to_vec();
                    isa.gemm_acc(&a[i * k..], k, 1, k, &b, n, &mut row);
                    assert_eq!(row, got[i * n..(i + 1) * n], "{isa:?} row {i}");
                }
            }
        }
    }
}
