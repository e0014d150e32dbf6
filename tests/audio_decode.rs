//! Integration tests for `seqrec::source::file`: decoding every supported format, downmixing,
//! resampling, chunked streaming, and the errors returned for bad input.
//!
//! Fixtures are made by `scripts/make_audio_fixtures.sh` (see `fixtures/audio/README.md`): 0.2 s
//! of an analytically known signal, channel 0 = 0.5·sin(2π·440t), channel 1 = 0.5·sin(2π·1000t),
//! channel 2 (3-channel file) = 0.5·sin(2π·660t). Bad inputs are written to temporary files here.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use seqrec::Error;
use seqrec::source::file::{AudioFile, read_all};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/audio")
        .join(name)
}

/// The signal in channel `ch` of the fixtures at time `t` seconds.
fn chan(ch: usize, t: f64) -> f64 {
    let f = [440.0, 1000.0, 660.0][ch];
    0.5 * (2.0 * PI * f * t).sin()
}

/// Expected mono downmix (average of the first `channels` channels), `n` samples at `rate`.
fn expected_mix(channels: usize, rate: u32, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0..channels).map(|c| chan(c, t)).sum::<f64>() / channels as f64
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

/// Normalised cross-correlation at lag 0.
fn correlation(a: &[f32], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let x = f64::from(a[i]);
        ab += x * b[i];
        aa += x * x;
        bb += b[i] * b[i];
    }
    ab / (aa * bb).sqrt()
}

/// Magnitude of the DFT of `x` (sampled at `rate`) at frequency `f`.
fn dft_mag(x: &[f32], rate: f64, f: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let w = 2.0 * PI * f * i as f64 / rate;
        re += f64::from(v) * w.cos();
        im -= f64::from(v) * w.sin();
    }
    (re * re + im * im).sqrt()
}

/// Parses a canonical PCM/float WAV (as written by ffmpeg / `wav_bytes`): (channels, bits, data).
fn parse_wav(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut pos = 12;
    let (mut channels, mut bits) = (0, 0);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..pos + 8 + len];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            bits = u16::from_le_bytes([body[14], body[15]]) as usize;
        } else if id == b"data" {
            return (channels, bits, body.to_vec());
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk");
}

/// Builds a WAV file: 16-byte `fmt ` chunk (`tag` 1 = PCM, 3 = IEEE float) and a `data` chunk.
fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// Mono 16-bit WAV of `n` frames of a 300 Hz sine at `rate`.
fn sine_wav_s16(rate: u32, n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n)
        .flat_map(|i| {
            let x = 0.5 * (2.0 * PI * 300.0 * i as f64 / f64::from(rate)).sin();
            ((x * 32767.0).round() as i16).to_le_bytes()
        })
        .collect();
    wav_bytes(1, 1, rate, 16, &data)
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Reads a file chunk by chunk (the way a real-time caller does), returning what was delivered
/// before the end or the error.
fn stream(path: &Path, rate: u32) -> (Vec<f32>, Option<Error>) {
    let mut f = AudioFile::open(path, rate).expect("open");
    let mut out = Vec::new();
    loop {
        match f.read_chunk(&mut out) {
            Ok(0) => return (out, None),
            Ok(_) => {}
            Err(e) => {
                // The stream is over after an error.
                assert_eq!(f.read_chunk(&mut out).unwrap(), 0);
                return (out, Some(e));
            }
        }
    }
}

/// Asserts `res` is an error whose message names the file, and returns it.
fn err_naming<T: std::fmt::Debug>(path: &Path, res: seqrec::Result<T>) -> Error {
    let e = res.expect_err("expected an error");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        e.to_string().contains(name),
        "error message does not name the file {name}: {e}"
    );
    e
}

fn is_io(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}
fn is_corrupt(e: &Error) -> bool {
    matches!(e, Error::CorruptAudio { .. })
}
fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::UnsupportedAudio { .. })
}

const ALL_FIXTURES: &[(&str, u32, usize, bool)] = &[
    // (name, rate, channels, lossless)
    ("stereo_16000_u8.wav", 16000, 2, true),
    ("stereo_16000_s16.wav", 16000, 2, true),
    ("stereo_16000_s24.wav", 16000, 2, true),
    ("stereo_16000_s32.wav", 16000, 2, true),
    ("stereo_16000_f32.wav", 16000, 2, true),
    ("stereo_44100_s16.wav", 44100, 2, true),
    ("stereo_44100_f32.wav", 44100, 2, true),
    ("3ch_16000_s16.wav", 16000, 3, true),
    ("sine1k_44100_s16.wav", 44100, 1, true),
    ("stereo_44100.flac", 44100, 2, true),
    ("stereo_44100.mp3", 44100, 2, false),
    ("stereo_44100.ogg", 44100, 2, false),
];

// ---------------------------------------------------------------------------------------------
// Good input
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_decodes_at_native_rate_with_exact_length() {
    for &(name, rate, channels, lossless) in ALL_FIXTURES {
        let f = AudioFile::open(fx(name), rate).unwrap();
        assert_eq!(f.source_rate(), rate, "{name}");
        assert_eq!(f.source_channels(), channels, "{name}");
        assert_eq!(f.target_rate(), rate, "{name}");
        assert_eq!(f.path(), fx(name));
        let x = read_all(fx(name), rate).unwrap();
        let expected = (f64::from(rate) * 0.2).round() as usize;
        if lossless {
            assert_eq!(x.len(), expected, "{name}");
        } else {
            // Gapless trimming (LAME tag / Vorbis granule positions) should give the exact length.
            assert!(
                x.len().abs_diff(expected) <= 2,
                "{name}: {} samples",
                x.len()
            );
        }
        assert!(x.iter().all(|v| v.is_finite() && v.abs() <= 1.0), "{name}");
    }
}

#[test]
fn every_fixture_decodes_to_16k() {
    for &(name, _, _, _) in ALL_FIXTURES {
        let x = read_all(fx(name), 16000).unwrap();
        assert!(x.len().abs_diff(3200) <= 2, "{name}: {} samples", x.len());
    }
}

#[test]
fn wav_samples_match_the_formula_within_quantisation() {
    // Max error of the channel average: half an LSB of the format (plus float slack).
    for (name, tol) in [
        ("stereo_16000_u8.wav", 1.0 / 128.0),
        ("stereo_16000_s16.wav", 1.0 / 32768.0),
        ("stereo_16000_s24.wav", 1e-6),
        ("stereo_16000_s32.wav", 1e-6),
        ("stereo_16000_f32.wav", 1e-6),
    ] {
        let x = read_all(fx(name), 16000).unwrap();
        let err = max_abs_diff(&x, &expected_mix(2, 16000, 3200));
        assert!(err <= tol, "{name}: max error {err} > {tol}");
    }
    let x = read_all(fx("3ch_16000_s16.wav"), 16000).unwrap();
    let err = max_abs_diff(&x, &expected_mix(3, 16000, 3200));
    assert!(err <= 1.0 / 32768.0, "3ch: max error {err}");
    let x = read_all(fx("stereo_44100_f32.wav"), 44100).unwrap();
    let err = max_abs_diff(&x, &expected_mix(2, 44100, 8820));
    assert!(err <= 1e-6, "44.1k f32: max error {err}");
}

#[test]
fn s16_and_f32_of_the_same_signal_agree_within_one_lsb() {
    let a = read_all(fx("stereo_16000_s16.wav"), 16000).unwrap();
    let b = read_all(fx("stereo_16000_f32.wav"), 16000).unwrap();
    let b64: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let err = max_abs_diff(&a, &b64);
    assert!(err <= 1.0 / 32768.0, "max difference {err}");
    // Not trivially equal: the s16 file really is quantised.
    assert!(err > 0.0);
}

#[test]
fn passthrough_of_mono_is_bit_exact() {
    let bytes = std::fs::read(fx("sine1k_44100_s16.wav")).unwrap();
    let (channels, bits, data) = parse_wav(&bytes);
    assert_eq!((channels, bits), (1, 16));
    let raw: Vec<f32> = data
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let x = read_all(fx("sine1k_44100_s16.wav"), 44100).unwrap();
    assert_eq!(x, raw);
}

#[test]
fn stereo_downmix_is_the_exact_channel_average() {
    let bytes = std::fs::read(fx("stereo_16000_f32.wav")).unwrap();
    let (channels, bits, data) = parse_wav(&bytes);
    assert_eq!((channels, bits), (2, 32));
    let expected: Vec<f32> = data
        .chunks_exact(8)
        .map(|b| {
            let l = f32::from_le_bytes(b[0..4].try_into().unwrap());
            let r = f32::from_le_bytes(b[4..8].try_into().unwrap());
            (l + r) / 2.0
        })
        .collect();
    assert_eq!(
        read_all(fx("stereo_16000_f32.wav"), 16000).unwrap(),
        expected
    );

    let bytes = std::fs::read(fx("3ch_16000_s16.wav")).unwrap();
    let (channels, _, data) = parse_wav(&bytes);
    assert_eq!(channels, 3);
    let expected: Vec<f32> = data
        .chunks_exact(6)
        .map(|b| {
            let s = |i: usize| f32::from(i16::from_le_bytes([b[i], b[i + 1]])) / 32768.0;
            (s(0) + s(2) + s(4)) / 3.0
        })
        .collect();
    assert_eq!(read_all(fx("3ch_16000_s16.wav"), 16000).unwrap(), expected);
}

#[test]
fn flac_decodes_to_the_same_samples_as_the_s16_wav() {
    let flac = read_all(fx("stereo_44100.flac"), 44100).unwrap();
    let wav = read_all(fx("stereo_44100_s16.wav"), 44100).unwrap();
    assert_eq!(flac, wav);
}

#[test]
fn lossy_formats_match_the_signal() {
    let expected = expected_mix(2, 44100, 8820);
    for name in ["stereo_44100.mp3", "stereo_44100.ogg"] {
        let x = read_all(fx(name), 44100).unwrap();
        // Gapless decoding keeps the signal aligned with the original at lag 0.
        let c = correlation(&x, &expected);
        assert!(c > 0.99, "{name}: correlation {c}");
        // Both tones survive at their frequencies.
        let m440 = dft_mag(&x, 44100.0, 440.0);
        let m1000 = dft_mag(&x, 44100.0, 1000.0);
        let m700 = dft_mag(&x, 44100.0, 700.0);
        assert!(m440 > 50.0 * m700 && m1000 > 50.0 * m700, "{name}");
    }
}

#[test]
fn resampling_44k_to_16k_keeps_a_1khz_tone_at_1khz_and_time_aligned() {
    let x = read_all(fx("sine1k_44100_s16.wav"), 16000).unwrap();
    // round(8820 * 16000 / 44100) = 3200.
    assert!(x.len().abs_diff(3200) <= 2, "length {}", x.len());

    // Zero crossings in the interior: 1 kHz -> 2 crossings per ms.
    let interior = &x[200..3000];
    let crossings = interior
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let freq = crossings as f64 / 2.0 / (interior.len() as f64 / 16000.0);
    assert!(
        (freq - 1000.0).abs() < 5.0,
        "zero-crossing frequency {freq}"
    );

    // The DFT peak (5 Hz grid around 1 kHz) is at 1000 Hz.
    let peak = (0..=40)
        .map(|k| 900.0 + 5.0 * f64::from(k))
        .max_by(|&a, &b| dft_mag(&x, 16000.0, a).total_cmp(&dft_mag(&x, 16000.0, b)))
        .unwrap();
    assert_eq!(peak, 1000.0);

    // Sample-accurate time alignment: a one-sample shift would give errors of ~0.2 here.
    let ideal: Vec<f64> = (0..x.len()).map(|i| chan(1, i as f64 / 16000.0)).collect();
    let err = max_abs_diff(&x[100..3100], &ideal[100..3100]);
    assert!(err < 5e-4, "max deviation from the ideal 1 kHz sine: {err}");
}

#[test]
fn resampled_44k_stereo_matches_the_native_16k_file() {
    let resampled = read_all(fx("stereo_44100_f32.wav"), 16000).unwrap();
    let native = read_all(fx("stereo_16000_f32.wav"), 16000).unwrap();
    assert_eq!(resampled.len(), native.len());
    let native64: Vec<f64> = native.iter().map(|&v| f64::from(v)).collect();
    let err = max_abs_diff(&resampled[100..3100], &native64[100..3100]);
    assert!(err < 5e-4, "max deviation {err}");
}

#[test]
fn upsampling_16k_to_44k_matches_the_native_44k_file() {
    let up = read_all(fx("stereo_16000_f32.wav"), 44100).unwrap();
    assert!(up.len().abs_diff(8820) <= 2, "length {}", up.len());
    let native = read_all(fx("stereo_44100_f32.wav"), 44100).unwrap();
    let native64: Vec<f64> = native.iter().map(|&v| f64::from(v)).collect();
    let err = max_abs_diff(&up[300..8500], &native64[300..8500]);
    assert!(err < 5e-4, "max deviation {err}");
}

#[test]
fn resampled_lengths_are_rounded_input_length_times_ratio() {
    let dir = tempfile::tempdir().unwrap();
    for (n, rate, target) in [
        (0usize, 44100u32, 16000u32),
        (1, 44100, 16000),
        (10, 44100, 16000),
        (1001, 44100, 16000),
        (3529, 44100, 16000),
        (20000, 44100, 16000),
        (777, 16000, 44100),
        (5000, 48000, 16000),
        (4321, 22050, 16000),
        (999, 8000, 48000),
    ] {
        let p = write(&dir, &format!("len_{n}_{rate}.wav"), &sine_wav_s16(rate, n));
        let x = read_all(&p, target).unwrap();
        let expected = (n as f64 * f64::from(target) / f64::from(rate)).round() as usize;
        assert_eq!(x.len(), expected, "{n} frames {rate} -> {target}");
        // The tail is real signal, not silence or a shifted copy: the last 64 samples follow the
        // 300 Hz sine (only approximately at the very end, where the band-limited reconstruction
        // of the abrupt stop rings).
        if expected >= 200 {
            let ideal: Vec<f64> = (expected - 64..expected)
                .map(|i| 0.5 * (2.0 * PI * 300.0 * i as f64 / f64::from(target)).sin())
                .collect();
            let c = correlation(&x[expected - 64..], &ideal);
            assert!(c > 0.98, "{n}@{rate}->{target}: tail correlation {c}");
        }
    }
}

#[test]
fn chunked_reading_equals_read_all() {
    for (name, target) in [
        ("stereo_44100_s16.wav", 44100),
        ("stereo_44100_s16.wav", 16000),
        ("stereo_16000_s24.wav", 44100),
        ("stereo_44100.flac", 16000),
        ("stereo_44100.mp3", 16000),
        ("stereo_44100.ogg", 22050),
        ("3ch_16000_s16.wav", 16000),
    ] {
        let whole = read_all(fx(name), target).unwrap();
        let mut f = AudioFile::open(fx(name), target).unwrap();
        let mut out = vec![7.0f32]; // read_chunk appends, it does not clear
        let mut calls = 0;
        loop {
            let before = out.len();
            let n = f.read_chunk(&mut out).unwrap();
            assert_eq!(out.len(), before + n);
            // Bounded: about one packet or one resampler unit per call.
            assert!(n <= 8192, "{name}: {n} samples in one call");
            calls += 1;
            if n == 0 {
                break;
            }
        }
        assert!(
            calls > 2,
            "{name}: expected several chunks, got {calls} calls"
        );
        assert_eq!(
            f.read_chunk(&mut out).unwrap(),
            0,
            "end of stream is sticky"
        );
        assert_eq!(out[0], 7.0);
        assert_eq!(&out[1..], &whole[..], "{name} -> {target}");
        assert_eq!(f.skipped_packets(), 0);
    }
}

#[test]
fn plain_wave_format_headers_decode_exactly() {
    // The float and 24/32-bit fixtures use WAVE_FORMAT_EXTENSIBLE (as ffmpeg writes them); these
    // use the plain tags: 1 (PCM) and 3 (IEEE float), mono so the output is bit-exact.
    let dir = tempfile::tempdir().unwrap();
    let floats: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).sin() * 0.9).collect();
    let data: Vec<u8> = floats.iter().flat_map(|v| v.to_le_bytes()).collect();
    let p = write(&dir, "plain_f32.wav", &wav_bytes(3, 1, 8000, 32, &data));
    assert_eq!(read_all(&p, 8000).unwrap(), floats);

    let ints: Vec<i32> = (0..1000).map(|i| (i - 500) * 16_000).collect();
    let data: Vec<u8> = ints
        .iter()
        .flat_map(|&v| v.to_le_bytes()[..3].to_vec())
        .collect();
    let p = write(&dir, "plain_s24.wav", &wav_bytes(1, 1, 8000, 24, &data));
    let expected: Vec<f32> = ints.iter().map(|&v| v as f32 / 8_388_608.0).collect();
    assert_eq!(read_all(&p, 8000).unwrap(), expected);

    let bytes: Vec<u8> = (0..=255).collect();
    let p = write(&dir, "plain_u8.wav", &wav_bytes(1, 1, 8000, 8, &bytes));
    let expected: Vec<f32> = (0..=255).map(|v| (v as f32 - 128.0) / 128.0).collect();
    assert_eq!(read_all(&p, 8000).unwrap(), expected);
}

#[test]
fn wav_with_unknown_length_streams_to_the_end_of_the_file() {
    // ffmpeg writing WAV to a pipe leaves the RIFF and data lengths at 0xFFFFFFFF.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = sine_wav_s16(16000, 5000);
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = write(&dir, "streamed.wav", &bytes);
    assert_eq!(read_all(&p, 16000).unwrap().len(), 5000);
}

#[test]
fn target_rate_out_of_range_is_a_config_error() {
    for rate in [0, 10_000_000] {
        let e = AudioFile::open(fx("stereo_16000_s16.wav"), rate).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{rate}: {e}");
        assert!(e.to_string().contains("target_rate"), "{e}");
        let e = read_all(fx("stereo_16000_s16.wav"), rate).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{rate}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("does_not_exist.wav");
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_io(&e), "{e}");
    let e = err_naming(&p, read_all(&p, 16000));
    assert!(is_io(&e), "{e}");
}

#[test]
fn directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("folder.wav");
    std::fs::create_dir(&p).unwrap();
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_io(&e), "{e}");
}

#[test]
fn empty_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "empty.wav", b"");
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_corrupt(&e), "{e}");
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn text_file_named_wav_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let text = "This is not audio.\nJust some notes, saved with the wrong extension.\n".repeat(50);
    for name in ["notes.wav", "notes.mp3", "notes.flac", "notes.ogg"] {
        let p = write(&dir, name, text.as_bytes());
        let e = err_naming(&p, AudioFile::open(&p, 16000));
        assert!(is_unsupported(&e), "{name}: {e}");
    }
}

#[test]
fn wav_truncated_inside_the_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fx("stereo_16000_s16.wav")).unwrap();
    let data_start = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    for cut in 1..data_start {
        let p = write(&dir, &format!("header_cut_{cut}.wav"), &bytes[..cut]);
        let e = err_naming(&p, AudioFile::open(&p, 16000));
        if cut >= 12 {
            // Recognisably a RIFF/WAVE file: reported as damaged, not as "not audio".
            assert!(is_corrupt(&e), "cut at {cut}: {e}");
        } else {
            assert!(is_corrupt(&e) || is_unsupported(&e), "cut at {cut}: {e}");
        }
    }
}

#[test]
fn wav_truncated_mid_data_streams_up_to_the_cut_then_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fx("stereo_16000_s16.wav")).unwrap();
    let data_start = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let full = read_all(fx("stereo_16000_s16.wav"), 16000).unwrap();
    for frames in [1usize, 1000, 1500, 3199] {
        // Cut in the middle of a frame (2 channels x 2 bytes): the partial frame is dropped.
        let cut = data_start + frames * 4 + 1;
        let p = write(&dir, &format!("cut_{frames}.wav"), &bytes[..cut]);

        let e = err_naming(&p, read_all(&p, 16000));
        assert!(is_corrupt(&e), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");

        let (got, e) = stream(&p, 16000);
        let e = e.expect("streaming a truncated file ends with an error");
        assert!(is_corrupt(&e), "{e}");
        assert!(e.to_string().contains(&format!("{frames} frames")), "{e}");
        assert_eq!(got, full[..frames], "samples before the cut are delivered");
    }
}

#[test]
fn wav_truncated_while_resampling_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fx("stereo_44100_s16.wav")).unwrap();
    let p = write(&dir, "cut_44k.wav", &bytes[..bytes.len() / 2]);
    let e = err_naming(&p, read_all(&p, 16000));
    assert!(is_corrupt(&e), "{e}");
}

#[test]
fn wav_data_length_far_past_the_end_of_the_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let good = sine_wav_s16(16000, 1000);

    // Data chunk claims 2 GB, RIFF length is honest: inconsistent header, refused at open.
    let mut bytes = good.clone();
    bytes[40..44].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    let p = write(&dir, "huge_data_len.wav", &bytes);
    let e = err_naming(&p, read_all(&p, 16000));
    assert!(is_corrupt(&e), "{e}");

    // Both lengths claim ~4 GB: found out when the data runs out, with no huge allocation.
    let mut bytes = good.clone();
    bytes[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bytes[40..44].copy_from_slice(&0xFFFF_FFC0u32.to_le_bytes());
    let p = write(&dir, "huge_lengths.wav", &bytes);
    let e = err_naming(&p, read_all(&p, 16000));
    assert!(is_corrupt(&e), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    let (got, _) = stream(&p, 16000);
    assert_eq!(got.len(), 1000);
}

#[test]
fn wav_header_with_zero_channels_or_zero_rate_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let good = sine_wav_s16(16000, 100);

    let mut bytes = good.clone();
    bytes[22..24].copy_from_slice(&0u16.to_le_bytes());
    let p = write(&dir, "zero_channels.wav", &bytes);
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_corrupt(&e), "{e}");

    let mut bytes = good.clone();
    bytes[24..28].copy_from_slice(&0u32.to_le_bytes());
    let p = write(&dir, "zero_rate.wav", &bytes);
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_corrupt(&e), "{e}");
    assert!(e.to_string().contains("0 Hz"), "{e}");

    let mut bytes = good.clone();
    bytes[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    let p = write(&dir, "absurd_rate.wav", &bytes);
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_unsupported(&e), "{e}");

    let mut bytes = good;
    bytes[34..36].copy_from_slice(&12u16.to_le_bytes()); // 12 bits per sample
    let p = write(&dir, "odd_bits.wav", &bytes);
    let e = err_naming(&p, AudioFile::open(&p, 16000));
    assert!(is_corrupt(&e) || is_unsupported(&e), "{e}");
}

#[test]
fn nan_or_infinite_float_samples_are_corrupt_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, label) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut samples = vec![0.25f32; 2 * 4000];
        // Frame 2500, channel 1.
        samples[2 * 2500 + 1] = bad;
        let data: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = write(
            &dir,
            &format!("bad_{label}.wav"),
            &wav_bytes(3, 2, 16000, 32, &data),
        );
        for target in [16000, 8000] {
            let e = err_naming(&p, read_all(&p, target));
            assert!(is_corrupt(&e), "{e}");
            let msg = e.to_string();
            assert!(msg.contains("sample 2500 of channel 1"), "{msg}");
            assert!(msg.contains("0.156250 s"), "{msg}");
            assert!(msg.contains(label), "{msg}");
        }
    }
}

#[test]
fn truncated_flac_and_ogg_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["stereo_44100.flac", "stereo_44100.ogg"] {
        let bytes = std::fs::read(fx(name)).unwrap();
        for frac in [0.1, 0.5, 0.9] {
            let cut = (bytes.len() as f64 * frac) as usize;
            let p = write(&dir, &format!("cut_{frac}_{name}"), &bytes[..cut]);
            let e = err_naming(&p, read_all(&p, 16000));
            assert!(is_corrupt(&e), "{name} cut at {frac}: {e}");
        }
    }
}

#[test]
fn truncated_mp3_decodes_up_to_the_cut() {
    // MPEG audio has no reliable end marker (see the module docs): a cut MP3 just ends.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fx("stereo_44100.mp3")).unwrap();
    let p = write(&dir, "cut.mp3", &bytes[..bytes.len() / 2]);
    let x = read_all(&p, 44100).unwrap();
    assert!(x.len() > 2000 && x.len() < 6000, "{} samples", x.len());
}

/// Byte ranges (start, len) of the MPEG frames in an MP3 file.
fn mp3_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    fn frame_len(h: &[u8]) -> Option<usize> {
        if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
            return None;
        }
        let kbps = [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
        ][usize::from(h[2] >> 4)];
        let rate = [44100, 48000, 32000, 0][usize::from((h[2] >> 2) & 3)];
        (kbps != 0 && rate != 0).then(|| 144 * kbps * 1000 / rate + usize::from((h[2] >> 1) & 1))
    }
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos + 4 <= bytes.len() {
        match frame_len(&bytes[pos..]) {
            Some(len) if pos + len <= bytes.len() => {
                frames.push((pos, len));
                pos += len;
            }
            _ => pos += 1,
        }
    }
    frames
}

/// An MP3 made of the fixture's audio frames repeated to `n` frames, those for which `damage(i)`
/// is true having their payload replaced by pseudo-random bytes (the 4-byte frame header and the
/// 2 bytes after it are kept, so the demuxer still finds the frames and the decoder fails on
/// them). The fixture's Xing/Info frame is left out: its frame count would cut the stream short.
fn mp3_with_damage(n: usize, damage: impl Fn(usize) -> bool) -> Vec<u8> {
    let bytes = std::fs::read(fx("stereo_44100.mp3")).unwrap();
    let frames = mp3_frames(&bytes);
    assert!(frames.len() > 4, "fixture has {} frames", frames.len());
    // frames[0] is the Xing/Info frame written by LAME.
    let audio = &frames[1..];
    let mut out = bytes[..frames[0].0].to_vec(); // the ID3 tag
    let mut seed = 0x1234_5678u32;
    for i in 0..n {
        let (pos, len) = audio[i % audio.len()];
        let start = out.len();
        out.extend_from_slice(&bytes[pos..pos + len]);
        if damage(i) {
            for b in &mut out[start + 6..] {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *b = (seed >> 16) as u8;
            }
        }
    }
    out
}

#[test]
fn mp3_whose_packets_all_fail_to_decode_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "all_damaged.mp3", &mp3_with_damage(200, |_| true));
    let t = std::time::Instant::now();
    let e = err_naming(&p, read_all(&p, 16000));
    assert!(is_corrupt(&e), "{e}");
    assert!(e.to_string().contains("consecutive"), "{e}");
    assert!(t.elapsed().as_secs() < 10);
}

#[test]
fn mp3_with_many_scattered_damaged_packets_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    // Every other packet damaged: never 32 in a row, but far more than 256 in total.
    let p = write(
        &dir,
        "scattered.mp3",
        &mp3_with_damage(1200, |i| i % 2 == 1),
    );
    let mut f = AudioFile::open(&p, 16000).unwrap();
    let mut out = Vec::new();
    let e = loop {
        match f.read_chunk(&mut out) {
            Ok(0) => panic!("expected an error, decoded {} samples", out.len()),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(is_corrupt(&e), "{e}");
    assert!(e.to_string().contains("damaged packets"), "{e}");
    assert!(f.skipped_packets() > 256);
}

#[test]
fn mp3_with_a_few_damaged_packets_is_decoded_and_they_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "few.mp3",
        &mp3_with_damage(80, |i| i == 30 || i == 55),
    );
    let mut f = AudioFile::open(&p, 44100).unwrap();
    let mut out = Vec::new();
    while f.read_chunk(&mut out).unwrap() > 0 {}
    let skipped = f.skipped_packets();
    assert!((1..=10).contains(&skipped), "skipped {skipped}");
    assert!(out.len() > 60 * 1152, "{} samples", out.len());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes, alone, behind a plausible (or lying) WAV header, or after the start of a
    /// real FLAC/MP3/OGG file, never panic or hang: they decode or give a typed error naming the
    /// file.
    #[test]
    fn arbitrary_bytes_never_panic(
        header in prop::sample::select(vec![0usize, 1, 2, 3]),
        fixture in prop::sample::select(vec!["stereo_44100.flac", "stereo_44100.mp3", "stereo_44100.ogg"]),
        keep in 0usize..4000,
        channels in 0u16..4,
        rate in prop::sample::select(vec![0u32, 1, 8000, 44100, u32::MAX]),
        bits in prop::sample::select(vec![0u16, 8, 12, 16, 24, 32, 64]),
        tag in prop::sample::select(vec![1u16, 3, 0xFFFE, 0x55]),
        body in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = match header {
            0 => body.clone(),
            1 => wav_bytes(tag, channels, rate, bits, &body),
            3 => {
                // The start of a real FLAC/MP3/OGG file followed by garbage.
                let mut b = std::fs::read(fx(fixture)).unwrap();
                b.truncate(keep);
                b.extend_from_slice(&body);
                b
            }
            _ => {
                // Valid header, lying data length.
                let mut b = wav_bytes(1, 2, 16000, 16, &body);
                b[40..44].copy_from_slice(&(body.len() as u32 * 1000 + 7).to_le_bytes());
                b
            }
        };
        let p = write(&dir, "fuzz.wav", &bytes);
        for target in [16000u32, 44100] {
            match read_all(&p, target) {
                Ok(x) => prop_assert!(x.iter().all(|v| v.is_finite())),
                Err(e) => prop_assert!(e.to_string().contains("fuzz.wav"), "{}", e),
            }
        }
    }
}

/// Peak resident memory of this process (Linux), in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "writes a 106 MB WAV (20 min at 44.1 kHz) and decodes it; run with --ignored"]
fn long_file_streams_in_bounded_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("long.wav");
    let frames: usize = 44100 * 60 * 20;
    let data_len = (frames * 2) as u32;
    let mut header = wav_bytes(1, 1, 44100, 16, &[]);
    header[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    header[40..44].copy_from_slice(&data_len.to_le_bytes());
    let mut w = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    w.write_all(&header).unwrap();
    for i in 0..frames {
        let x = 0.5 * (2.0 * PI * 1000.0 * (i % 44100) as f64 / 44100.0).sin();
        w.write_all(&((x * 32767.0) as i16).to_le_bytes()).unwrap();
    }
    drop(w);

    let before = peak_rss_kb();
    let mut f = AudioFile::open(&p, 16000).unwrap();
    let mut chunk = Vec::new();
    let mut total = 0;
    loop {
        chunk.clear();
        let n = f.read_chunk(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, frames * 16000 / 44100);
    if let (Some(before), Some(after)) = (before, peak_rss_kb()) {
        // The decoded output alone would be 77 MB; streaming must stay far below that.
        assert!(
            after - before < 32 * 1024,
            "peak RSS grew by {} kB",
            after - before
        );
    }
}
