#!/usr/bin/env bash
# Does the live window slow recognition? The keyword clip
# fixtures/clips/kws/live_yes_down_right_go.wav (12 s, 4 keywords) is played
# into the virtual microphone (scripts/vmic.sh) under `seqrec live --bundle
# models/kws`, RUNS times without and RUNS times with `--window` (on $DISPLAY,
# or a private Xvfb), alternating. Prints, per setting, the events heard, the
# dropped chunks, and the capture-to-event latency from each run's
# --stats-json: the median of the runs' p50 and the worst run's p99 (4 events
# a run, so a run's p99 is its slowest event).
#
#   scripts/bench_window.sh [RUNS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
scripts/vmic.sh start >/dev/null
. .vmic/env
if [[ -z ${DISPLAY:-} ]]; then
  n=90
  while [[ -e /tmp/.X$n-lock || -e /tmp/.X11-unix/X$n ]]; do n=$((n + 1)); done
  Xvfb ":$n" -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb_pid=$!
  trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
  sleep 1
  export DISPLAY=:$n
fi
out=target/bench/window
rm -rf "$out" && mkdir -p "$out"
for r in $(seq "$runs"); do
  for mode in plain window; do
    extra=()
    [[ $mode == window ]] && extra=(--window)
    ./target/release/seqrec live --bundle models/kws --format jsonl --duration 14 \
      --threshold 0.5 --off-threshold 0.25 --stats-json "$out/$mode-$r.json" "${extra[@]}" \
      >"$out/$mode-$r.jsonl" 2>/dev/null &
    pid=$!
    sleep 2.5
    scripts/vmic.sh play fixtures/clips/kws/live_yes_down_right_go.wav
    wait $pid
  done
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
for mode in ("plain", "window"):
    p50, p99, events, dropped = [], [], 0, 0
    for r in range(1, runs + 1):
        s = json.load(open(f"{out}/{mode}-{r}.json"))
        events += sum(1 for _ in open(f"{out}/{mode}-{r}.jsonl"))
        dropped += s["dropped_chunks"]
        if s.get("latency_ms"):
            p50.append(s["latency_ms"]["p50"])
            p99.append(s["latency_ms"]["p99"])
    print(f"{mode:6s}: {runs} runs, {events} events, {dropped} dropped chunks; capture-to-event latency "
          f"p50 median of runs {statistics.median(p50):.1f} ms, p99 worst run {max(p99):.1f} ms "
          f"(per run p50 {', '.join(f'{v:.1f}' for v in p50)})")
PY
