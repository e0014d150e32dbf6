#!/usr/bin/env python3
"""Pick among trained heads by VALIDATION data only (training voices):
the best decision-sweep score of evaluate_embed.val_sweep for each ONNX head.

    python3 scripts/kws/select_embed.py A.onnx B.onnx ...
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate_embed as E  # noqa: E402

va = np.load(os.path.join(E.EMB_DIR, "val.npz"))
for p in sys.argv[1:]:
    E.ONNX_PATH = p
    sw = E.val_sweep(E.Head(), va)
    sw.sort(key=lambda r: -r["score"])
    b = sw[0]
    print(f"{os.path.basename(p)}: best score {b['score']} (sm {b['smoothing_s']} on {b['threshold']} off "
          f"{b['off_threshold']} md {b['min_duration_s']} rf {b['refractory_s']}): val recall {b['recall']:.3f}, "
          f"wrong {b['wrong']}, false {b['false']}, val_fa {b['val_fa_events']}", flush=True)
