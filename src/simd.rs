//! Run-time choice of instruction set for the numeric hot paths.
//!
//! Hot loops are compiled several times (AVX-512, AVX2+FMA, baseline) and
//! the best one this CPU supports is picked once, so one binary runs
//! everywhere and still uses the wide units where they exist.

/// Instruction set the numeric kernels were compiled for, chosen at run time.
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
}

/// `e^x` in f32, branch-free so loops over slices vectorise (Cephes `expf`
/// polynomial; relative error about 2e-7 over the clamped range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    // Round x / ln 2 to the nearest integer n with the 1.5 * 2^23 trick: the
    // sum's low mantissa bits then hold n itself, so 2^n is built with integer
    // operations only — no float-to-int conversion, whose saturating
    // semantics would keep this loop from vectorising.
    const ROUND: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    // Cody-Waite split of ln 2 keeps the reduction exact.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let ni = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Natural logarithm in f32 for positive, normal `x` (Cephes `logf`
/// polynomial, about 1 ulp), branch-free so loops over slices vectorise.
/// Zero, negative, subnormal and non-finite inputs give unspecified values.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    // x = m * 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) - 126;
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    // Keep m in [sqrt(1/2), sqrt(2)) - 1 for the polynomial.
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    y = y * m - 1.151_461e-1;
    y = y * m + 1.167_699_9e-1;
    y = y * m - 1.242_014_1e-1;
    y = y * m + 1.424_932_3e-1;
    y = y * m - 1.666_805_8e-1;
    y = y * m + 2.000_071_4e-1;
    y = y * m - 2.499_999_4e-1;
    y = y * m + 3.333_333e-1;
    y *= m * z;
    let ef = e as f32;
    y += -2.121_944_4e-4 * ef;
    y += -0.5 * z;
    m + y + 0.693_359_4 * ef
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        let mut worst = 0f32;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let d = (ln(x) - x.ln()).abs() / x.ln().abs().max(1.0);
            worst = worst.max(d);
            x *= 1.0007;
        }
        assert!(worst < 3e-7, "ln rel err {worst}");
        assert_eq!(ln(1.0), 0.0);
    }
}
