#!/usr/bin/env python3
"""The human-voice check of models/kws: 11 keyword clips spoken by people,
cut from Debian packages at run time (their licences, GPL and CC-BY-SA, keep
them out of the repository), each with 1 s of silence around it, through
`seqrec batch --bundle models/kws` at the shipped thresholds and at
--threshold 0.5 --off-threshold 0.25.

    apt-get install alsa-utils klettres-data asterisk-core-sounds-en-wav pocketsphinx-testdata
    pip install pocketsphinx==5.1.1 numpy scipy soundfile
    python3 scripts/kws/human_check.py     # -> target/kws_work/human/report.json + a table

Word timings come from an offline recognizer (PyPI pocketsphinx 5.1.1, BSD,
its own en-US model): for a clip with more than the keyword ("Front left",
"go forward ten meters") the keyword's segment is cut with 50 ms on each
side; a clip that is the word alone is used whole.
"""
import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402  (its 16 kHz mono loader)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "target", "kws_work", "human")
SEQREC = os.environ.get("SEQREC", os.path.join(ROOT, "target", "release", "seqrec"))
SR = 16000

ALSA = "/usr/share/sounds/alsa"
CLIPS = [(f"{ALSA}/{p}_{side}.wav", side.lower(), "phrase")
         for side in ["Left", "Right"] for p in ["Front", "Rear", "Side"]]
CLIPS += [
    ("/usr/share/klettres/en/syllab/no.ogg", "no", "word"),
    ("/usr/share/klettres/en_GB/syllab/no.ogg", "no", "word"),
    ("/usr/share/asterisk/sounds/en_US_f_Allison/vm-no.wav", "no", "word"),
    ("/usr/share/pocketsphinx/test/data/goforward.raw", "go", "phrase"),
    ("/usr/share/pocketsphinx/test/data/something.raw", "go", "phrase"),
]


def load(path):
    if path.endswith(".raw"):  # pocketsphinx test data: 16 kHz s16le mono
        return np.fromfile(path, dtype="<i2").astype(np.float64) / 32768
    return synth.load_resample(path)


def words(x):
    """pocketsphinx's words with (start, end) seconds."""
    from pocketsphinx import Decoder
    d = Decoder(samprate=SR, loglevel="FATAL")
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
    return [(s.word, s.start_frame / 100, (s.end_frame + 1) / 100) for s in d.seg()]


def events(wav, extra):
    r = subprocess.run([SEQREC, "batch", "--bundle", os.path.join(ROOT, "models/kws"),
                        "--format", "jsonl", *extra, wav], check=True, capture_output=True,
                       text=True)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def main():
    os.makedirs(WORK, exist_ok=True)
    rows = []
    for path, kw, kind in CLIPS:
        if not os.path.exists(path):
            print(f"missing {path} (see the apt line in this script)", file=sys.stderr)
            rows.append({"clip": path, "keyword": kw, "error": "missing"})
            continue
        x = load(path)
        heard = words(x)
        seg = next(((a, b) for w, a, b in heard if w.split("(")[0] == kw), None)
        if seg is not None and kind == "phrase":
            a, b = max(0, int((seg[0] - 0.05) * SR)), min(len(x), int((seg[1] + 0.05) * SR))
            y = x[a:b]
        elif kind == "word":
            y = x
        else:
            rows.append({"clip": path, "keyword": kw, "labeller": [w for w, _, _ in heard],
                         "error": "the labeller did not find the keyword"})
            continue
        pad = np.zeros(SR)
        name = os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path)
        wav = os.path.join(WORK, os.path.splitext(name)[0] + f"_{kw}.wav")
        sf.write(wav, np.concatenate([pad, y, pad]).astype(np.float32), SR, subtype="PCM_16")
        row = {"clip": path, "keyword": kw, "labeller": [w for w, _, _ in heard],
               "cut_s": round(len(y) / SR, 3)}
        for tag, extra in [("shipped", []), ("t0.5", ["--threshold", "0.5",
                                                       "--off-threshold", "0.25"])]:
            ev = events(wav, extra)
            row[tag] = [e["label"] for e in ev]
            row[tag + "_hit"] = kw in row[tag]
        rows.append(row)
        print(json.dumps(row), flush=True)
    ok = [r for r in rows if "error" not in r]
    summary = {"clips": len(rows), "cut": len(ok),
               "found_shipped": sum(r["shipped_hit"] for r in ok),
               "found_t0.5": sum(r["t0.5_hit"] for r in ok)}
    json.dump({"rows": rows, "summary": summary}, open(os.path.join(WORK, "report.json"), "w"),
              indent=1)
    print("| clip | keyword | events (shipped) | events (0.5 / 0.25) |")
    print("|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| `{r['clip']}` | {r['keyword']} | {r['error']} | |")
        else:
            print(f"| `{r['clip']}` | {r['keyword']} | {' '.join(r['shipped']) or '-'} | "
                  f"{' '.join(r['t0.5']) or '-'} |")
    print(json.dumps(summary))
    enroll_check(rows)


def enroll_check(rows):
    """`seqrec enroll` on a real human voice: alsa-utils' speaker says
    "left" and "right" three times each (Front/Rear/Side); enroll from two,
    find the third (1 s of silence around it), every way round; false alarms
    over enroll_eval.py's keyword-free test audio if it exists."""
    fa_wav = os.path.join(ROOT, "target", "kws_work", "enroll", "fa_test.wav")
    out = []
    for kw in ["left", "right"]:
        cuts = [os.path.join(WORK, f"alsa_{p}_{kw.capitalize()}_{kw}.wav")
                for p in ["Front", "Rear", "Side"]]
        for i, held in enumerate(cuts):
            b = os.path.join(WORK, f"enrolled_{kw}_{i}")
            r = subprocess.run([SEQREC, "enroll", "--bundle", os.path.join(ROOT, "models/kws"),
                                "--keyword", kw, "--out", b, "--force",
                                *[c for c in cuts if c != held]], capture_output=True, text=True)
            if r.returncode != 0:
                out.append({"keyword": kw, "held_out": held, "error": r.stderr.strip()})
                continue
            r = subprocess.run([SEQREC, "batch", "--bundle", b, "--format", "jsonl", held]
                               + ([fa_wav] if os.path.exists(fa_wav) else []),
                               check=True, capture_output=True, text=True)
            ev = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
            row = {"keyword": kw, "held_out": os.path.basename(held),
                   "found": any(e["file"] == held for e in ev),
                   "fa": sum(1 for e in ev if e["file"] == fa_wav)}
            out.append(row)
            print(json.dumps(row))
    fa_s = sf.info(fa_wav).duration if os.path.exists(fa_wav) else 0
    print(json.dumps({"enrolled_human_found": sum(r.get("found", False) for r in out),
                      "of": len(out), "false_alarms": sum(r.get("fa", 0) for r in out),
                      "fa_hours": len(out) * fa_s / 3600}))
    json.dump(out, open(os.path.join(WORK, "enroll_report.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
