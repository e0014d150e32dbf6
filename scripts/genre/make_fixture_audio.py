#!/usr/bin/env python3
"""Render fixtures/genre/bach_16k.wav: J.S. Bach chorale BWV 66.6 (public domain) from the
music21 corpus (BSD), MIDI rendered with fluidsynth + FluidR3_GM (MIT), mono 16 kHz PCM16, 8 s.
Needs: apt install fluidsynth fluid-soundfont-gm; venv /work/venv-tf with music21, soundfile, numpy.

With --monteverdi: fixtures/genre/monteverdi_16k.wav, the first 12 s of the test-split render
target/genre_work/audio/test/classical__m21-monteverdi__test0.wav made by scripts/genre/render.py m21
(a Monteverdi madrigal from the music21 corpus, a source the genre head never trained on).
"""
import os, subprocess, tempfile
import numpy as np, soundfile as sf, music21

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if "--monteverdi" in os.sys.argv:
    src = os.path.join(REPO, "target/genre_work/audio/test/classical__m21-monteverdi__test0.wav")
    y, sr = sf.read(src, dtype="float64")
    assert sr == 16000, sr
    out = os.path.join(REPO, "fixtures", "genre", "monteverdi_16k.wav")
    sf.write(out, y[: 12 * 16000], 16000, subtype="PCM_16")
    print(out, os.path.getsize(out), "bytes")
    raise SystemExit
out = os.path.join(REPO, "fixtures", "genre", "bach_16k.wav")
with tempfile.TemporaryDirectory() as d:
    mid, wav = os.path.join(d, "in.mid"), os.path.join(d, "out.wav")
    music21.corpus.parse("bach/bwv66.6").write("midi", fp=mid)
    subprocess.run(["timeout", "60", "fluidsynth", "-ni", "-F", wav, "-r", "16000",
                    "/usr/share/sounds/sf2/FluidR3_GM.sf2", mid], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    y, sr = sf.read(wav, dtype="float64", always_2d=True)
assert sr == 16000, sr
y = y.mean(axis=1)[: 8 * 16000]
y = y / max(1e-9, np.abs(y).max()) * 0.9
sf.write(out, y, 16000, subtype="PCM_16")
print(out, len(y) / 16000, "s", os.path.getsize(out), "bytes")
