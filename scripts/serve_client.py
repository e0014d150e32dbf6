#!/usr/bin/env python3
"""A `seqrec serve` client: stream a WAV file (or stdin PCM) and print what comes back.

    pip install websockets==15.0.1 soundfile numpy
    seqrec serve --bundle kws=models/kws &
    python3 scripts/serve_client.py --bundle kws fixtures/clips/kws/live_yes_down_right_go.wav
    python3 scripts/serve_client.py --bundle kws --realtime clip.wav     # paced like a microphone
    python3 scripts/serve_client.py --bundle kws --snapshot-at 2.0 clip.wav   # move the stream mid-way

Sends 16-bit PCM in 100 ms messages, then {"type":"end"}; prints each
event as a JSON line. With --snapshot-at S it asks for a snapshot after S
seconds of audio, closes, and continues the rest on a second connection
with resume=TOKEN (the events are those of one connection). The file must
be mono at the bundle's rate (see GET /v1/bundles); convert with
`ffmpeg -i in.mp3 -ac 1 -ar 16000 out.wav`.
"""
import argparse
import asyncio
import json
import sys

import numpy as np
import soundfile as sf
import websockets


async def stream(url, pcm, rate, realtime, stop_at=None):
    """Sends pcm[0:stop_at] (all if None); returns (events, token or None)."""
    events, token = [], None
    async with websockets.connect(url, max_size=None) as ws:
        async def send():
            step = rate // 10
            end = len(pcm) if stop_at is None else stop_at
            for i in range(0, end, step):
                await ws.send(pcm[i:min(i + step, end)].tobytes())
                if realtime:
                    await asyncio.sleep(0.1)
            await ws.send(json.dumps({"type": "snapshot" if stop_at is not None else "end"}))

        sender = asyncio.create_task(send())
        async for msg in ws:
            v = json.loads(msg)
            if v["type"] == "event":
                events.append(v)
                print(json.dumps(v), flush=True)
            elif v["type"] == "snapshot":
                token = v["token"]
                break
            elif v["type"] == "error":
                sys.exit(f"server: {v['message']}")
            elif v["type"] == "done":
                print(json.dumps(v), file=sys.stderr)
        await sender
    return events, token


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wav")
    ap.add_argument("--server", default="ws://127.0.0.1:8080")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--realtime", action="store_true")
    ap.add_argument("--snapshot-at", type=float)
    a = ap.parse_args()
    x, rate = sf.read(a.wav, dtype="int16", always_2d=True)
    if x.shape[1] != 1:
        sys.exit(f"{a.wav}: {x.shape[1]} channels; give a mono file")
    pcm = np.ascontiguousarray(x[:, 0]).astype("<i2")
    url = f"{a.server}/v1/stream?bundle={a.bundle}&sample_rate={rate}&format=s16le"
    if a.snapshot_at is None:
        asyncio.run(stream(url, pcm, rate, a.realtime))
        return
    cut = int(a.snapshot_at * rate)
    _, token = asyncio.run(stream(url, pcm, rate, a.realtime, stop_at=cut))
    print(f"snapshot after {a.snapshot_at} s: {len(token)} characters; resuming", file=sys.stderr)
    asyncio.run(stream(f"{url}&resume={token}", pcm[cut:], rate, a.realtime))


if __name__ == "__main__":
    main()
