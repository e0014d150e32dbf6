#!/usr/bin/env python3
"""Step 1 of the kws bundle: synthesise single-word clips with local TTS engines.

    python3 scripts/kws/synth.py            # pyenv python: numpy, scipy, soundfile

Engines (Debian packages, no network at synthesis time):
  * espeak-ng  (apt espeak-ng): base voices x variants (`-v en-us+f3`), random
               speed `-s` and pitch `-p` per rendition;
  * flite      (apt flite): voices kal, kal16, awb, rms, slt, with random
               `duration_stretch` and `int_f0_target_mean`;
  * festival   (apt festival, festvox-kallpc16k, festvox-us-slt-hts): voices
               kal_diphone and cmu_us_slt_arctic_hts, random Duration_Stretch.

Every clip is resampled to 16 kHz mono, trimmed to the word (first/last
10 ms frame whose RMS is within 35 dB of the clip's loudest frame, then 10 ms
margin on both sides), peak-normalised to -1 dBFS and stored as 16-bit WAV in
target/kws_work/clips/<voice>/<word>_<k>.wav. Existing files are kept
(resumable cache). target/kws_work/clips/index.json lists every clip with
voice, engine, split ("train" or "heldout"), word, path and duration.

Held-out voices (never used for training; evaluation and fixture clips only):
  * flite slt, festival cmu_us_slt_arctic_hts (same speaker, both held out);
  * every espeak-ng voice with variant f4, m6 or klatt3, and every variant of
    the base voice en-029 (Caribbean English).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "target", "kws_work")
CLIPS = os.path.join(WORK, "clips")
SR = 16000

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
# near misses of the keywords (sound-alikes, shared onsets/rhymes)
NEAR_MISSES = ["of", "cup", "dot", "now", "know", "dawn", "gone", "yet", "lift", "write",
               "stock", "yeah", "yell", "less", "nose", "note", "oh", "upper", "town", "done",
               "loft", "light", "ride", "bright", "own", "odd", "often", "stuff", "top", "stomp",
               "goal", "goat", "dog", "lip", "rice", "one", "in", "ought", "cough", "shop"]
# other words (Speech Commands' auxiliary words and common short words)
OTHER = ["bed", "bird", "cat", "eight", "five", "four", "happy", "house", "marvin", "nine",
         "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "learn", "follow",
         "forward", "backward", "visual", "the", "and", "hello", "water", "music", "table",
         "open", "start", "morning", "computer", "window", "yellow", "number", "maybe", "people",
         "little", "because", "thank", "please", "time", "green", "about", "very"]
UNKNOWN = NEAR_MISSES + OTHER

ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                "en-gb-x-gbcwmd", "en-us-nyc", "en-029"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Annie", "Andy", "belinda",
                   "grandma", "david", "linda", "edward", "john", "Mike", "paul", "robert",
                   "steph", "anika", "Denis"]
HELDOUT_VARIANTS = {"f4", "m6", "klatt3"}
HELDOUT_BASES = {"en-029"}
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["voice_kal_diphone", "voice_cmu_us_slt_arctic_hts"]
HELDOUT_OTHER = {"flite_slt", "festival_cmu_us_slt_arctic_hts"}

KW_RENDITIONS = 2      # renditions of each keyword per espeak voice (different speed/pitch)
UNK_RENDITIONS = 1
FLITE_SETTINGS = 5     # renditions per word per flite voice
FESTIVAL_SETTINGS = 4


def espeak_voices():
    have = set(os.listdir("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v"))
    out = []
    for i, b in enumerate(ESPEAK_BASES):
        for j, v in enumerate(ESPEAK_VARIANTS):
            # every other (base, variant) pair keeps the synthesis time down
            if (v and v not in have) or (i + j) % 2:
                continue
            name = b + ("+" + v if v else "")
            held = b in HELDOUT_BASES or v in HELDOUT_VARIANTS
            out.append(("espeak_" + name.replace("+", "_"), name, "heldout" if held else "train"))
    return out


def load_resample(path):
    import soundfile as sf
    import scipy.signal
    from math import gcd
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(1)
    if sr != SR:
        g = gcd(sr, SR)
        x = scipy.signal.resample_poly(x, SR // g, sr // g)
    return x


def trim_norm(x):
    """Trim to the word (frames within 35 dB of the loudest 10 ms frame), 10 ms
    margins, peak -1 dBFS. Returns None for an empty result."""
    f = 160
    n = len(x) // f
    if n < 3:
        return None
    e = np.sqrt((x[:n * f].reshape(n, f) ** 2).mean(1) + 1e-12)
    db = 20 * np.log10(e / e.max())
    on = np.nonzero(db > -35)[0]
    a = max(0, (on[0] - 1) * f)
    b = min(len(x), (on[-1] + 2) * f)
    y = x[a:b]
    pk = np.abs(y).max()
    if pk <= 0:
        return None
    return y / pk * 10 ** (-1 / 20)


def save(path, y):
    import soundfile as sf
    q = np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)
    sf.write(path, q, SR, subtype="PCM_16")


def main():
    rng = np.random.default_rng(7)
    os.makedirs(CLIPS, exist_ok=True)
    index = []
    tmp = tempfile.mkdtemp(prefix="kws_synth_", dir=WORK)
    tmpwav = os.path.join(tmp, "t.wav")
    words = [(w, KW_RENDITIONS) for w in KEYWORDS] + [(w, UNK_RENDITIONS) for w in UNKNOWN]
    made = 0

    def add(voice, engine, split, word, k, gen):
        nonlocal made
        d = os.path.join(CLIPS, voice)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"{word}_{k}.wav")
        if not os.path.exists(p):
            try:
                gen()
                y = trim_norm(load_resample(tmpwav))
            except Exception as e:  # a failing voice/word is skipped, not fatal
                print(f"[synth] {voice} {word}: {e}", file=sys.stderr)
                return
            if y is None:
                return
            save(p, y)
            made += 1
        import soundfile as sf
        index.append({"voice": voice, "engine": engine, "split": split, "word": word,
                      "path": os.path.relpath(p, WORK), "dur_s": sf.info(p).frames / SR})

    # espeak-ng: speed/pitch drawn per (voice, word, rendition) from a seeded rng,
    # so a re-run regenerates identical files
    for vid, name, split in espeak_voices():
        for w, nr in words:
            for k in range(nr):
                s = int(rng.integers(120, 210))
                p = int(rng.integers(20, 85))
                add(vid, "espeak-ng", split, w, k, lambda: subprocess.run(
                    ["espeak-ng", "-v", name, "-s", str(s), "-p", str(p), "-w", tmpwav, w],
                    check=True, capture_output=True))
        print(f"[synth] {vid} ({split}) done; {made} new clips", flush=True)

    for v in FLITE_VOICES:
        vid = "flite_" + v
        split = "heldout" if vid in HELDOUT_OTHER else "train"
        for w, _ in words:
            for k in range(FLITE_SETTINGS):
                st = float(rng.uniform(0.8, 1.4))
                f0 = float(rng.uniform(80, 220))
                add(vid, "flite", split, w, k, lambda: subprocess.run(
                    ["flite", "-voice", v, "--setf", f"duration_stretch={st:.3f}",
                     "--setf", f"int_f0_target_mean={f0:.0f}", "-t", w, "-o", tmpwav],
                    check=True, capture_output=True))
        print(f"[synth] {vid} ({split}) done; {made} new clips", flush=True)

    # festival: one process per voice, all words through a Scheme script
    for v in FESTIVAL_VOICES:
        vid = "festival_" + v[len("voice_"):]
        split = "heldout" if vid in HELDOUT_OTHER else "train"
        d = os.path.join(CLIPS, vid)
        os.makedirs(d, exist_ok=True)
        jobs = []
        for w, _ in words:
            for k in range(FESTIVAL_SETTINGS):
                st = float(rng.uniform(0.8, 1.4))
                raw = os.path.join(tmp, f"{vid}_{w}_{k}.wav")
                jobs.append((w, k, st, raw))
        todo = [j for j in jobs if not os.path.exists(os.path.join(d, f"{j[0]}_{j[1]}.wav"))]
        if todo:
            scm = [f"({v})"]
            for w, k, st, raw in todo:
                scm.append(f"(Parameter.set 'Duration_Stretch {st:.3f})")
                scm.append(f'(utt.save.wave (utt.synth (Utterance Text "{w}")) "{raw}" \'riff)')
            r = subprocess.run(["festival", "--pipe"], input="\n".join(scm) + "\n",
                               text=True, capture_output=True, timeout=900)
            if r.returncode != 0:
                print(f"[synth] festival {v} failed: {r.stderr[-500:]}", file=sys.stderr)
        for w, k, st, raw in jobs:
            def gen(raw=raw):
                os.replace(raw, tmpwav)
            p = os.path.join(d, f"{w}_{k}.wav")
            if os.path.exists(p) or os.path.exists(raw):
                add(vid, "festival", split, w, k, gen)
        print(f"[synth] {vid} ({split}) done; {made} new clips", flush=True)

    with open(os.path.join(CLIPS, "index.json"), "w") as fh:
        json.dump(index, fh, indent=0)
    for sp in ("train", "heldout"):
        sel = [c for c in index if c["split"] == sp]
        print(f"[synth] {sp}: {len(sel)} clips, {len({c['voice'] for c in sel})} voices, "
              f"{sum(c['dur_s'] for c in sel) / 60:.1f} min")
    try:
        os.rmdir(tmp)
    except OSError:
        pass


if __name__ == "__main__":
    main()
