//! The resampler shared by file and microphone input: rubato's FFT
//! resampler, with its processing unit sized from the two rates.
//!
//! Why the FFT resampler (and not the sinc ones): see [`super::file`] — in
//! rubato 0.16 `SincFixedIn` reports a wrong output delay and has a weaker
//! stop band; `FftFixedIn` resamples by the exact rational ratio, so there is
//! no drift over hours, and its reported delay is exact.

use rubato::{FftFixedIn, Resampler};

/// Frames per call on each side of an FFT resampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Units {
    /// Input frames consumed per call.
    pub unit_in: usize,
    /// Output frames produced per call.
    pub unit_out: usize,
    /// Greatest common divisor of the rates (for messages).
    pub gcd: usize,
}

/// The smallest whole number of rational periods (`rate / gcd` frames) that
/// gives at least `min_unit` frames on both sides, made even so the delay
/// (half the output unit) is a whole number of frames. `Err` (with the sizes
/// it would need) when a unit would exceed `max_unit` frames — rates with a
/// tiny common divisor.
pub(crate) fn units(
    source_rate: u32,
    target_rate: u32,
    min_unit: usize,
    max_unit: usize,
) -> Result<Units, Units> {
    let (fin, fout) = (source_rate as usize, target_rate as usize);
    let g = gcd(fin, fout);
    let (min_in, min_out) = (fin / g, fout / g);
    let mut k = min_unit.div_ceil(min_in).max(min_unit.div_ceil(min_out));
    k += k % 2;
    let u = Units {
        unit_in: k * min_in,
        unit_out: k * min_out,
        gcd: g,
    };
    if u.unit_in > max_unit || u.unit_out > max_unit {
        Err(u)
    } else {
        Ok(u)
    }
}

/// A mono FFT resampler, its output buffer, and the output frames to drop for its delay.
pub(crate) type FftParts = (FftFixedIn<f32>, Vec<Vec<f32>>, usize);

/// A mono FFT resampler consuming exactly `unit_in` frames per call, its
/// output buffer, and the output frames to drop for its delay.
pub(crate) fn fft_resampler(
    source_rate: u32,
    target_rate: u32,
    unit_in: usize,
) -> Result<FftParts, rubato::ResamplerConstructionError> {
    // With chunk_size_in == unit_in and one sub-chunk, rubato picks exactly k
    // periods per FFT unit, so each call consumes `unit_in` frames.
    let r = FftFixedIn::<f32>::new(source_rate as usize, target_rate as usize, unit_in, 1, 1)?;
    debug_assert_eq!(r.input_frames_next(), unit_in);
    let out = r.output_buffer_allocate(true);
    let delay = r.output_delay();
    Ok((r, out, delay))
}

/// Greatest common divisor.
pub(crate) fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
