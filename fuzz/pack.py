#!/usr/bin/env python3
"""Fuzz corpora as one file per target (thousands of tiny files do not belong in git).

    python3 fuzz/pack.py unpack   # fuzz/corpora/<target>.bin -> fuzz/corpus/<target>/ (for cargo fuzz run)
    python3 fuzz/pack.py pack     # fuzz/corpus/<target>/ (after cargo fuzz cmin) -> fuzz/corpora/<target>.bin

Format: for each input, its length as a little-endian u32, then its bytes
(tests/fuzz_corpora.rs reads it the same way).
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PACKED = os.path.join(HERE, "corpora")
DIRS = os.path.join(HERE, "corpus")


def pack():
    os.makedirs(PACKED, exist_ok=True)
    for t in sorted(os.listdir(DIRS)):
        files = sorted(os.listdir(os.path.join(DIRS, t)))
        with open(os.path.join(PACKED, t + ".bin"), "wb") as out:
            for f in files:
                data = open(os.path.join(DIRS, t, f), "rb").read()
                out.write(struct.pack("<I", len(data)) + data)
        print(f"{t}: {len(files)} inputs")


def unpack():
    for name in sorted(os.listdir(PACKED)):
        t = name[:-4]
        d = os.path.join(DIRS, t)
        os.makedirs(d, exist_ok=True)
        raw = open(os.path.join(PACKED, name), "rb").read()
        i = n = 0
        while i < len(raw):
            (k,) = struct.unpack_from("<I", raw, i)
            with open(os.path.join(d, f"{n:06d}"), "wb") as f:
                f.write(raw[i + 4:i + 4 + k])
            i += 4 + k
            n += 1
        print(f"{t}: {n} inputs")


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]]()
