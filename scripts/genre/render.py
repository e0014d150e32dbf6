#!/usr/bin/env python3
"""Render the genre training/validation/test audio (never shipped) into target/genre_work/audio/.

    apt-get install mma fluidsynth fluid-soundfont-gm ffmpeg wesnoth-1.16-music warzone2100-music \
        nexuiz-music fretsonfire-songs-muldjord
    mma -G                                   # once, builds MMA's groove database
    nice /work/venv-genre/bin/python scripts/genre/render.py [mma|m21|real|all]

Writes 16 kHz mono PCM16 WAVs, 30 s each (real recordings: up to 3 x 30 s segments per file),
and target/genre_work/audio/index_<part>.json: [{path, label, source, split}].

Sources and the hold-out BY SOURCE (whole style files / composers / packages):
  MMA style files -> label by file name (STYLES below); split per style file (VAL / TEST sets).
  music21 corpus -> classical: bach, mozart, beethoven, palestrina = train; haydn = val; monteverdi = test.
  wesnoth-1.16-music (orchestral) -> classical, split BY FILE (weaker: same composer/production).
  warzone2100-music -> electronic train; nexuiz-music -> electronic, split by file into val/test.
  fretsonfire-songs-muldjord (metal; backing + guitar stems mixed) -> rock, split by song: 2 train, 2 test.
Augmentation (train only): tempo, key transposition, groove variant, GM program swaps (mido),
gain, one-pole EQ tilt, white noise at 10-40 dB SNR, a synthetic room (30 %), a lossy codec round
trip (MP3 64/128k, Vorbis 64k, Opus 48k; 30 %).
"""
import glob
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(ROOT, "target", "genre_work")
AUD = os.path.join(WORK, "audio")
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
STYLEDIR = "/usr/share/mma/lib/stdlib"
SR = 16000
CLIP_S = 30.0

# label -> (train style files, val style files, test style files)
STYLES = {
    "rock": (["50srock", "basicrock", "bubblerock", "rock-128", "rockballad", "folkrock", "twist"],
             ["8beat"], ["softrock", "60srock"]),
    "jazz": (["bigband", "jazzcombo", "jazzwaltz", "modernjazz", "swing", "fastswing", "slowjazz", "evansish",
              "gypsyjazz", "easyswing", "68swing", "fastjazzwaltz"],
             ["mellowjazz", "descendingjazz"], ["bebop", "jazzguitar", "nitejazz", "dixie"]),
    "blues": (["blues", "blues128", "fastblues", "boggiewoggie", "hillcountry"],
              ["blues68"], ["slowblues", "shuffleboggie"]),
    "country": (["bluegrass", "countryswing", "countryblues"],
                ["slowcountry"], ["countrywaltz", "westernswing"]),
    "latin": (["bossanova", "salsa", "lighttango", "rhumba", "jazzrhumba", "merengue", "bolero", "beguine",
               "afro-cuban", "cubanguitar", "latinwaltz"],
              ["mambo", "slowbolero"], ["samba", "tango", "chacha", "son"]),
    "electronic": (["trance"], [], []),
}
TEMPO = {"rock": (90, 160), "jazz": (90, 220), "blues": (60, 130), "country": (90, 180),
         "latin": (80, 180), "electronic": (120, 145)}
# progressions in semitone offsets from the key root + chord quality
PROG = {
    "rock": [[(0, ""), (7, ""), (9, "m"), (5, "")], [(0, ""), (5, ""), (7, ""), (5, "")],
             [(9, "m"), (5, ""), (0, ""), (7, "")], [(0, "5"), (10, "5"), (5, "5"), (0, "5")]],
    "jazz": [[(2, "m7"), (7, "7"), (0, "M7"), (0, "M7")], [(0, "M7"), (9, "m7"), (2, "m7"), (7, "7")],
             [(4, "m7"), (9, "7"), (2, "m7"), (7, "7")], [(2, "m7b5"), (7, "7b9"), (0, "m7"), (0, "m7")]],
    "blues": [[(0, "7")] * 4 + [(5, "7")] * 2 + [(0, "7")] * 2 + [(7, "7"), (5, "7"), (0, "7"), (7, "7")],
              [(0, "7"), (5, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"), (0, "7"),
               (7, "7"), (5, "7"), (0, "7"), (0, "7")]],
    "country": [[(0, ""), (0, ""), (5, ""), (0, ""), (7, ""), (7, ""), (0, ""), (0, "")],
                [(0, ""), (5, ""), (0, ""), (7, "")], [(0, ""), (9, "m"), (5, ""), (7, "7")]],
    "latin": [[(2, "m7"), (7, "7"), (0, "M7"), (0, "6")], [(9, "m"), (2, "m"), (4, "7"), (9, "m")],
              [(0, "m"), (5, "m"), (7, "7"), (0, "m")], [(0, ""), (7, "7"), (7, "7"), (0, "")]],
    "electronic": [[(9, "m"), (5, ""), (0, ""), (7, "")], [(0, "m"), (8, ""), (3, ""), (10, "")]],
}
NOTES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
N_PER = {"train": 16, "val": 3, "test": 3}


def grooves(style):
    txt = open(os.path.join(STYLEDIR, style + ".mma"), errors="ignore").read()
    names = re.findall(r"^\s*DefGroove\s+(\S+)", txt, re.M | re.I)
    good = [g for g in names if not re.search(r"intro|end|fill|break", g, re.I)]
    return good or names


def write_wav(path, y):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, np.clip(y, -1, 1), SR, subtype="PCM_16")


def augment(y, rng):
    y = y * rng.uniform(0.3, 1.2) / (np.abs(y).max() + 1e-6)
    a = rng.uniform(-0.6, 0.6)  # one-pole tilt: y + a * (y - lowpass(y))
    from scipy.signal import lfilter
    c = 0.85
    lp = lfilter([1 - c], [1, -c], y)
    y = y + a * (y - lp)
    if rng.random() < 0.7:
        snr = rng.uniform(10, 40)
        p = np.mean(y ** 2) + 1e-12
        y = y + np.random.default_rng(rng.randrange(2 ** 31)).normal(0, np.sqrt(p / 10 ** (snr / 10)), len(y))
    if rng.random() < 0.3:  # a room: exponentially decaying noise, RT60 0.3-1.5 s, 10-40 % wet
        from scipy.signal import fftconvolve
        rt = rng.uniform(0.3, 1.5)
        t = np.arange(int(rt * SR)) / SR
        ir = np.random.default_rng(rng.randrange(2 ** 31)).normal(0, 1, len(t)) * np.exp(-6.9 * t / rt)
        wet = fftconvolve(y, ir / np.sqrt(np.sum(ir ** 2)))[: len(y)]
        y = y + rng.uniform(0.1, 0.4) * wet
    y = y / max(1.0, np.abs(y).max())
    if rng.random() < 0.3:  # a lossy codec round trip
        y = lossy(y, rng.choice(["libmp3lame:64k", "libmp3lame:128k", "libvorbis:64k", "libopus:48k"]))
    return (y / max(1.0, np.abs(y).max())).astype(np.float32)


def lossy(y, codec):
    enc, rate = codec.split(":")
    fmt = {"libmp3lame": "mp3", "libvorbis": "ogg", "libopus": "ogg"}[enc]
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    coded = subprocess.run(["ffmpeg", "-v", "quiet", "-f", "s16le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0",
                            "-c:a", enc, "-b:a", rate, "-f", fmt, "pipe:1"], input=pcm, capture_output=True,
                           timeout=120).stdout
    out = decode(coded)
    if len(out) < len(y) // 2:
        return y
    out = np.pad(out, (0, max(0, len(y) - len(out))))[: len(y)]
    return out.astype(np.float64)


def load_render(wav):
    y, sr = sf.read(wav, always_2d=True)
    assert sr == SR
    return y.mean(1)


def finish(y, path, split, rng):
    y = y[: int(CLIP_S * SR)]
    if split == "train":
        y = augment(y, rng)
    else:
        y = (0.8 * y / (np.abs(y).max() + 1e-6)).astype(np.float32)
    write_wav(path, y)


def swap_programs(mid_in, mid_out, rng, label):
    import mido
    m = mido.MidiFile(mid_in)
    pool = [0, 6, 19, 40, 41, 42, 48, 49, 52, 56, 68, 70, 71, 73]  # classical timbres

    def swap(p):
        # rock: guitars become overdriven/distorted (metal-ish); others: a sibling in the same GM family
        if label == "rock" and 24 <= p < 32 and rng.random() < 0.6:
            return rng.choice([29, 30])
        if label == "classical":
            return rng.choice(pool)
        return p // 8 * 8 + rng.randrange(8) if rng.random() < 0.5 else p

    mapping = {}
    for tr in m.tracks:
        for i, msg in enumerate(tr):
            if msg.type == "program_change" and msg.channel != 9:
                if msg.channel not in mapping:
                    mapping[msg.channel] = swap(msg.program)
                tr[i] = msg.copy(program=mapping[msg.channel])
    # music21 writes no program changes for bare parts: add them
    if label == "classical":
        for tr in m.tracks:
            chans = sorted({msg.channel for msg in tr if hasattr(msg, "channel") and msg.channel != 9})
            for ch in chans:
                if ch not in mapping:
                    mapping[ch] = rng.choice(pool)
                    tr.insert(0, mido.Message("program_change", channel=ch, program=mapping[ch], time=0))
    m.save(mid_out)


def synth(mid, wav, seconds=CLIP_S + 6):
    """Render `mid` with FluidR3_GM, at most `seconds`: fluidsynth's fast render never ends on some
    music21 MIDI files (seen: 365 MB in 15 s), so read raw s16 stereo from its stdout and stop it."""
    need = int(seconds * SR) * 4
    p = subprocess.Popen(["timeout", "120", "fluidsynth", "-q", "-ni", "-T", "raw", "-O", "s16", "-F", "-", "-r", str(SR),
                          "-g", "0.6", SF2, mid], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buf = bytearray()
    while len(buf) < need:
        chunk = p.stdout.read(min(1 << 16, need - len(buf)))
        if not chunk:
            break
        buf += chunk
    p.kill()
    p.wait()
    if len(buf) < 4 * SR:
        return False
    y = np.frombuffer(bytes(buf[: len(buf) // 4 * 4]), "<i2").reshape(-1, 2).astype(np.float32) / 32768
    sf.write(wav, y, SR, subtype="PCM_16")
    return True


def part_mma():
    tmp = os.path.join(WORK, "tmp_mma")
    os.makedirs(tmp, exist_ok=True)
    index = []
    rng = random.Random(1)
    for label, splits in STYLES.items():
        for split, styles in zip(("train", "val", "test"), splits):
            for style in styles:
                gs = grooves(style)
                for k in range(N_PER[split]):
                    g = gs[k % len(gs)] if split == "train" else gs[0] if k == 0 else rng.choice(gs)
                    tempo = rng.randint(*TEMPO[label])
                    key = rng.randrange(12) if split == "train" else [0, 7, 5][k % 3]
                    prog = rng.choice(PROG[label])
                    bars = int(np.ceil((CLIP_S + 2) * tempo / 240)) + 1
                    lines = [f"Tempo {tempo}", f"Groove {g}"]
                    for b in range(bars):
                        r, q = prog[b % len(prog)]
                        lines.append(f"{b + 1} {NOTES[(r + key) % 12]}{q}")
                    base = f"{label}__mma-{style}__{split}{k}"
                    mf = os.path.join(tmp, base + ".mma")
                    open(mf, "w").write("\n".join(lines) + "\n")
                    mid = os.path.join(tmp, base + ".mid")
                    subprocess.run(["timeout", "60", "mma", "-f", mid, mf], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    if not os.path.exists(mid):
                        print("mma failed", mf, flush=True)
                        continue
                    if split == "train" and rng.random() < 0.5:
                        swap_programs(mid, mid, rng, label)
                    wav = os.path.join(tmp, base + ".wav")
                    if not synth(mid, wav):
                        print("synth failed", mid, flush=True)
                        continue
                    y = load_render(wav)
                    out = os.path.join(AUD, split, base + ".wav")
                    finish(y, out, split, rng)
                    os.remove(wav)
                    index.append(dict(path=out, label=label, source="mma-" + style, split=split))
            print(label, len(index), flush=True)
    return index


def part_m21():
    from music21 import corpus
    tmp = os.path.join(WORK, "tmp_m21")
    os.makedirs(tmp, exist_ok=True)
    rng = random.Random(2)
    comp = {"bach": ("train", 40), "mozart": ("train", 10), "beethoven": ("train", 10),
            "palestrina": ("train", 25), "haydn": ("val", 8), "monteverdi": ("test", 16)}
    index = []
    for c, (split, n) in comp.items():
        paths = sorted(str(p) for p in corpus.getComposer(c))
        rng.shuffle(paths)
        got = 0
        for p in paths:
            if got >= n:
                break
            base = f"classical__m21-{c}__{split}{got}"
            out = os.path.join(AUD, split, base + ".wav")
            if os.path.exists(out):  # resumable: names follow the seeded order
                index.append(dict(path=out, label="classical", source="m21-" + c, split=split))
                got += 1
                continue
            try:
                signal.alarm(60)  # some corpus scores take minutes to parse or write: skip them
                s = corpus.parse(p)
                if hasattr(s, "scores"):
                    s = s.scores[0]
                mid = os.path.join(tmp, base + ".mid")
                s.write("midi", fp=mid)
                swap_programs(mid, mid, rng, "classical")
                signal.alarm(0)
                # no need to cut the MIDI: synth() renders the first CLIP_S + 6 s only
            except Exception as e:  # noqa: BLE001
                signal.alarm(0)
                print("m21 fail", p, e, flush=True)
                continue
            wav = os.path.join(tmp, base + ".wav")
            if not synth(mid, wav):
                continue
            y = load_render(wav)
            # skip the first 0.5 s of silence, need >= 15 s
            if len(y) < 15 * SR:
                os.remove(wav)
                continue
            finish(y, out, split, rng)
            os.remove(wav)
            index.append(dict(path=out, label="classical", source="m21-" + c, split=split))
            got += 1
        print(c, got, flush=True)
    return index


def decode(path_or_bytes):
    if isinstance(path_or_bytes, bytes):
        args, inp = ["ffmpeg", "-v", "quiet", "-i", "pipe:0"], path_or_bytes
    else:
        args, inp = ["ffmpeg", "-v", "quiet", "-i", path_or_bytes], None
    r = subprocess.run(args + ["-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"], input=inp,
                       capture_output=True, timeout=300)
    return np.frombuffer(r.stdout, np.float32)


def segments(y, n=3):
    L = int(CLIP_S * SR)
    if len(y) < 15 * SR:
        return []
    if len(y) <= L:
        return [y]
    starts = np.linspace(SR * 5 if len(y) > L + 10 * SR else 0, len(y) - L, n).astype(int)
    return [y[s:s + L] for s in sorted(set(starts))]


def part_real():
    rng = random.Random(3)
    index = []
    items = []
    wes = sorted(glob.glob("/usr/share/games/wesnoth/1.16/data/core/music/*.ogg"))
    random.Random(7).shuffle(wes)
    for i, f in enumerate(wes):
        split = "test" if i < 10 else "val" if i < 16 else "train"
        items.append(("classical", "wesnoth", split, f, os.path.basename(f)[:-4]))
    for f in sorted(glob.glob("/usr/share/games/warzone2100/music/**/*.opus", recursive=True)):
        items.append(("electronic", "warzone", "train", f, os.path.basename(f)[:-5]))
    z = zipfile.ZipFile("/usr/share/games/nexuiz/data/music.pk3")
    nx = sorted(n for n in z.namelist() if n.endswith(".ogg"))
    for i, n in enumerate(nx):
        items.append(("electronic", "nexuiz", "val" if i % 3 == 0 else "test", ("zip", n),
                      os.path.basename(n)[:-4]))
    # Frets on Fire ships each song as a backing track plus a guitar stem: mixed, they are the song.
    for i, f in enumerate(sorted(glob.glob("/usr/share/games/fretsonfire/data/songs/muldjord/*/song.ogg"))):
        items.append(("rock", "fretsonfire", "train" if i < 2 else "test", ("fof", f), f.split("/")[-2]))
    for label, src, split, f, name in items:
        if isinstance(f, tuple) and f[0] == "fof":
            a, b = decode(f[1]), decode(f[1].replace("song.ogg", "guitar.ogg"))
            n = min(len(a), len(b))
            y = a[:n] + b[:n]
        else:
            y = decode(z.read(f[1]) if isinstance(f, tuple) else f)
        for k, seg in enumerate(segments(y, 3 if split == "train" else 2)):
            out = os.path.join(AUD, split, f"{label}__{src}__{name}_{k}.wav")
            finish(seg.astype(np.float64), out, split, rng)
            index.append(dict(path=out, label=label, source=src, split=split))
        print(src, name, len(index), flush=True)
    return index


def _timeout(*_):
    raise TimeoutError("parse took too long")


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, _timeout)
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    for part, fn in (("mma", part_mma), ("m21", part_m21), ("real", part_real)):
        if what in (part, "all"):
            idx = fn()
            os.makedirs(AUD, exist_ok=True)
            json.dump(idx, open(os.path.join(AUD, f"index_{part}.json"), "w"), indent=1)
            print(part, "tracks", len(idx), flush=True)
