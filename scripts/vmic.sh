#!/usr/bin/env bash
# A virtual microphone for testing live capture without a sound card.
#
# Runs a private PulseAudio daemon (state under .vmic/ in the repo root, never the user's own
# HOME or session) with a null sink `vsink` (48 kHz stereo) whose monitor is the default source,
# and an ~/.asoundrc in the private HOME that routes ALSA's default device to PulseAudio. A
# program started with that HOME and XDG_RUNTIME_DIR (cpal's default ALSA host included) then
# captures, in real time, whatever `play` plays into vsink.
#
# Usage:
#   scripts/vmic.sh start        start the daemon (no-op if it is already running); prints the
#                                environment lines, also written to .vmic/env:
#                                  eval "$(scripts/vmic.sh start)"   or   . .vmic/env
#   scripts/vmic.sh play FILE    play FILE into the virtual microphone (real time; blocks)
#   scripts/vmic.sh status       exit 0 if the daemon is running
#   scripts/vmic.sh stop         stop the daemon (by its pid; no-op if it is not running)
#
# The live microphone test uses it:
#   scripts/vmic.sh start >/dev/null && SEQREC_VMIC_ENV=$PWD/.vmic/env cargo test --test mic
#
# Needs the apt packages pulseaudio, pulseaudio-utils and libasound2-plugins
# (`scripts/setup.sh --test` installs them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.vmic
home=$dir/home
run=$dir/run
envfile=$dir/env
pidfile=$run/pulse/pid

die() {
  echo "vmic: $*" >&2
  exit 1
}

# The daemon's pid, if it is running (empty otherwise).
daemon_pid() {
  local pid
  [[ -f $pidfile ]] || return 0
  pid=$(tr -dc '0-9' <"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q pulseaudio; then
    echo "$pid"
  fi
}

# Runs a command in the private environment.
in_env() {
  HOME=$home XDG_RUNTIME_DIR=$run PULSE_SERVER=unix:$run/pulse/native "$@"
}

check_tools() {
  local missing=()
  command -v pulseaudio >/dev/null || missing+=(pulseaudio)
  command -v pactl >/dev/null && command -v paplay >/dev/null || missing+=(pulseaudio-utils)
  compgen -G '/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so' >/dev/null \
    || compgen -G '/usr/lib/alsa-lib/libasound_module_pcm_pulse.so' >/dev/null \
    || missing+=(libasound2-plugins)
  if ((${#missing[@]})); then
    die "missing packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]} (or scripts/setup.sh --test)"
  fi
}

write_env() {
  {
    echo "export HOME=$home"
    echo "export XDG_RUNTIME_DIR=$run"
    echo "export PULSE_SERVER=unix:$run/pulse/native"
  } >"$envfile"
}

start() {
  check_tools
  mkdir -p "$home" "$run"
  chmod 700 "$run"
  printf 'pcm.!default { type pulse }\nctl.!default { type pulse }\n' >"$home/.asoundrc"
  if [[ -z $(daemon_pid) ]]; then
    rm -f "$pidfile"
    in_env pulseaudio -n --daemonize=yes --exit-idle-time=-1 --use-pid-file=yes \
      --log-target=newfile:"$dir/pulse.log" \
      -L module-native-protocol-unix \
      -L "module-null-sink sink_name=vsink rate=48000 channels=2" \
      || die "pulseaudio failed to start; see $dir/pulse.log"
  fi
  # The daemon may take a moment to accept connections.
  local ok=
  for _ in $(seq 50); do
    if in_env pactl info >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.1
  done
  [[ -n $ok ]] || die "pulseaudio does not answer; see $dir/pulse.log"
  in_env pactl list short sinks | grep -q vsink \
    || in_env pactl load-module module-null-sink sink_name=vsink rate=48000 channels=2 >/dev/null
  in_env pactl set-default-source vsink.monitor
  write_env
  cat "$envfile"
}

stop() {
  local pid
  pid=$(daemon_pid)
  if [[ -z $pid ]]; then
    echo "vmic: not running" >&2
    return 0
  fi
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
  fi
  rm -f "$pidfile"
  echo "vmic: stopped (pid $pid)" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    pid=$(daemon_pid)
    [[ -n $pid ]] || { echo "vmic: not running" >&2; exit 1; }
    echo "vmic: running (pid $pid), env file $envfile" >&2
    ;;
  play)
    [[ $# -eq 2 ]] || die "usage: scripts/vmic.sh play FILE"
    [[ -f $2 ]] || die "$2: no such file"
    check_tools
    [[ -n $(daemon_pid) ]] || die "not running; run scripts/vmic.sh start first"
    in_env paplay -d vsink "$2"
    ;;
  *)
    echo "usage: scripts/vmic.sh start|stop|status|play FILE" >&2
    exit 2
    ;;
esac
