//! Streaming invariance of the front end: samples pushed in any chunk sizes
//! give frames bit-identical to processing the whole signal at once.

use proptest::prelude::*;
use seqrec::features::{FeatureConfig, FeatureKind, FrontEnd, MelScale};

fn signal(n: usize, seed: u64) -> Vec<f32> {
    // A deterministic mix of tones and LCG noise.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            0.4 * (i as f32 * 0.031).sin() + 0.2 * (i as f32 * 0.173).sin() + 0.1 * noise
        })
        .collect()
}

fn configs() -> Vec<FeatureConfig> {
    let speech = FeatureConfig::speech_16k();
    vec![
        speech.clone(),
        FeatureConfig {
            kind: FeatureKind::Mfcc,
            center: true,
            ..speech.clone()
        },
        FeatureConfig {
            sample_rate: 22050,
            n_fft: 1024,
            win_length: None,
            hop_length: Some(256),
            n_mels: 96,
            fmin: 0.0,
            fmax: None,
            mel_scale: MelScale::Htk,
            center: true,
            kind: FeatureKind::Mel,
            n_mfcc: 20,
            pad_left: 0,
            ..speech.clone()
        },
        // A hop longer than the FFT: samples between frames are skipped.
        FeatureConfig {
            hop_length: Some(600),
            ..speech.clone()
        },
        // Raw windows with left context (Silero VAD's framing).
        FeatureConfig {
            kind: FeatureKind::Raw,
            n_fft: 576,
            win_length: None,
            hop_length: Some(512),
            pad_left: 64,
            ..speech.clone()
        },
        // The same with the partial last chunk zero-padded and kept
        // (models/vad), and a spectral front end with `pad_end`.
        FeatureConfig {
            kind: FeatureKind::Raw,
            n_fft: 576,
            win_length: None,
            hop_length: Some(512),
            pad_left: 64,
            pad_end: true,
            ..speech.clone()
        },
        FeatureConfig {
            pad_end: true,
            ..speech.clone()
        },
        // dB with `top_db` groups of 5, 8, 8, ... frames, gain and an output
        // affine map (speech_embedding's front end): frames are held back
        // until their group is complete.
        FeatureConfig {
            kind: FeatureKind::Db,
            n_mels: 32,
            fmin: 60.0,
            fmax: Some(3800.0),
            gain: 32768.0,
            top_db: Some(20.0),
            top_db_group: 8,
            top_db_first: Some(5),
            scale: 0.1,
            offset: 2.0,
            ..speech.clone()
        },
        // musicnn's log10(1 + 10000 mel), centred.
        FeatureConfig {
            kind: FeatureKind::Log10p,
            n_mels: 96,
            fmin: 0.0,
            fmax: Some(8000.0),
            center: true,
            ..speech.clone()
        },
        // `top_db` over the whole stream (nothing out before `finish`), centred.
        FeatureConfig {
            kind: FeatureKind::Db,
            top_db: Some(30.0),
            center: true,
            ..speech.clone()
        },
        // Groups of 3 from the start, a hop longer than the FFT.
        FeatureConfig {
            kind: FeatureKind::Db,
            top_db: Some(10.0),
            top_db_group: 3,
            hop_length: Some(600),
            scale: -2.0,
            ..speech
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_chunking_gives_identical_frames(
        cfg_i in 0usize..1000,
        n in 0usize..12000,
        seed in any::<u64>(),
        sizes in prop::collection::vec(1usize..3000, 1..10),
    ) {
        let all = configs();
        let cfg = &all[cfg_i % all.len()];
        let x = signal(n, seed);
        let whole = FrontEnd::new(cfg).unwrap().process_all(&x);
        let mut fe = FrontEnd::new(cfg).unwrap();
        let mut out = Vec::new();
        let (mut pos, mut k) = (0, 0);
        while pos < x.len() {
            let len = sizes[k % sizes.len()].min(x.len() - pos);
            fe.push(&x[pos..pos + len], &mut out);
            fe.push(&[], &mut out); // empty pushes are harmless
            pos += len;
            k += 1;
        }
        fe.finish(&mut out);
        prop_assert_eq!(out.len(), cfg.n_frames(n) * cfg.n_bins());
        prop_assert!(whole.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()));
        prop_assert_eq!(whole.len(), out.len());
    }
}

#[test]
fn finish_resets_for_the_next_stream() {
    let cfg = FeatureConfig {
        center: true,
        ..FeatureConfig::speech_16k()
    };
    let x = signal(5000, 7);
    let mut fe = FrontEnd::new(&cfg).unwrap();
    let a = fe.process_all(&x);
    let mut out = Vec::new();
    fe.push(&x[..1234], &mut out);
    fe.reset();
    out.clear();
    fe.push(&x, &mut out);
    fe.finish(&mut out);
    assert_eq!(a, out);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The parallel whole-file path equals streaming, bit for bit, for any
    /// block size, thread count and decoder chunking.
    #[test]
    fn parallel_batch_equals_streaming(
        cfg_i in 0usize..1000,
        n in 0usize..20000,
        seed in any::<u64>(),
        threads in 1usize..4,
        block_frames in 1usize..40,
        chunk in 1usize..5000,
    ) {
        use seqrec::features::batch::{BatchOptions, extract_frames};
        let all = configs();
        let cfg = &all[cfg_i % all.len()];
        let x = signal(n, seed);
        let whole = FrontEnd::new(cfg).unwrap().process_all(&x);
        let fe = FrontEnd::new(cfg).unwrap();
        let mut pos = 0;
        let (frames, read) = extract_frames(&fe, BatchOptions { threads, block_frames }, |buf| {
            let k = chunk.min(x.len() - pos);
            buf.extend_from_slice(&x[pos..pos + k]);
            pos += k;
            Ok(k)
        }).unwrap();
        prop_assert_eq!(read, n);
        prop_assert_eq!(frames.len(), whole.len());
        prop_assert!(frames.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// `raw` frames are the samples themselves, after `pad_left` zeros of context
/// (Silero VAD: 512 new samples + the previous 64 per frame).
#[test]
fn raw_frames_with_left_context() {
    let cfg = FeatureConfig {
        kind: FeatureKind::Raw,
        n_fft: 576,
        win_length: None,
        hop_length: Some(512),
        pad_left: 64,
        ..FeatureConfig::speech_16k()
    };
    cfg.validate().unwrap();
    let x: Vec<f32> = (0..2000).map(|i| i as f32).collect();
    let out = FrontEnd::new(&cfg).unwrap().process_all(&x);
    assert_eq!(
        out.len(),
        3 * 576,
        "2000 samples hold 3 whole chunks of 512"
    );
    assert!(out[..64].iter().all(|&v| v == 0.0));
    assert_eq!(&out[64..576], &x[..512]);
    assert_eq!(&out[576..576 + 576], &x[448..1024]);
    assert_eq!(cfg.n_frames(2000), 3);
    assert_eq!(cfg.frame_time(1), 512.0 / 16000.0);
    // pad_end (models/vad): the 464 samples after the third chunk are a
    // fourth, zero-padded, as Silero's get_speech_timestamps scores them
    let padded = FeatureConfig {
        pad_end: true,
        ..cfg.clone()
    };
    let out = FrontEnd::new(&padded).unwrap().process_all(&x);
    assert_eq!(out.len(), 4 * 576);
    assert_eq!(&out[3 * 576..3 * 576 + 64], &x[1472..1536]);
    assert_eq!(&out[3 * 576 + 64..3 * 576 + 528], &x[1536..2000]);
    assert!(out[3 * 576 + 528..].iter().all(|&v| v == 0.0));
    assert_eq!(padded.n_frames(2000), 4);
    // a signal of whole chunks gets no extra one
    assert_eq!(padded.n_frames(2048), 4);
    assert_eq!(
        FrontEnd::new(&padded)
            .unwrap()
            .process_all(&x[..1536])
            .len(),
        3 * 576
    );
}
