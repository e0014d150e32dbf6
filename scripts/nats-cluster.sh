#!/usr/bin/env bash
# A local NATS JetStream cluster of 3 nodes on loopback, for the cluster tests
# and benchmarks (like scripts/vmic.sh for the microphone).
#
#   scripts/nats-cluster.sh start DIR   start 3 nodes with their data in DIR; writes DIR/env:
#                                       NATS_URLS=nats://127.0.0.1:P1,...  NATS_PIDS="pid1 pid2 pid3"
#   scripts/nats-cluster.sh kill DIR N  kill -9 node N (1-3)
#   scripts/nats-cluster.sh restart DIR N   start node N again (same ports and data)
#   scripts/nats-cluster.sh stop DIR    stop all nodes
#
# Ports are free ones found at start. Needs Debian's nats-server (scripts/setup.sh --test).
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { sed -n 2,11p "$0" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-cluster: nats-server not found (apt-get install nats-server)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_node() { # N
  local n=$1
  # shellcheck disable=SC1091
  source "$dir/ports"
  local cp="CPORT$n" p="PORT$n"
  nats-server -a 127.0.0.1 -p "${!p}" -n "n$n" -js -sd "$dir/n$n" \
    --cluster_name seqrec-local -cluster "nats://127.0.0.1:${!cp}" \
    --routes "nats://127.0.0.1:$CPORT1,nats://127.0.0.1:$CPORT2,nats://127.0.0.1:$CPORT3" \
    >"$dir/n$n.log" 2>&1 &
  echo $! >"$dir/n$n.pid"
}

wait_ready() { # N...: client port answers and JetStream has a leader
  for n in "$@"; do
    local p="PORT$n"
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/${!p}") 2>/dev/null; then break; fi
      sleep 0.1
    done
  done
  for _ in $(seq 150); do
    grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" "$dir"/n*.log 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nats-cluster: no JetStream leader after 15 s; see $dir/n*.log" >&2
  return 1
}

write_env() {
  # shellcheck disable=SC1091
  source "$dir/ports"
  {
    echo "NATS_URLS=nats://127.0.0.1:$PORT1,nats://127.0.0.1:$PORT2,nats://127.0.0.1:$PORT3"
    echo "NATS_PIDS=\"$(cat "$dir"/n1.pid) $(cat "$dir"/n2.pid) $(cat "$dir"/n3.pid)\""
  } >"$dir/env"
}

case $cmd in
  start)
    mkdir -p "$dir"
    {
      for n in 1 2 3; do echo "PORT$n=$(free_port)"; echo "CPORT$n=$(free_port)"; done
    } >"$dir/ports"
    for n in 1 2 3; do start_node $n; done
    wait_ready 1 2 3
    write_env
    cat "$dir/env"
    ;;
  kill)
    kill -9 "$(cat "$dir/n$3.pid")" 2>/dev/null || true
    ;;
  restart)
    start_node "$3"
    write_env
    ;;
  stop)
    for n in 1 2 3; do
      [[ -f $dir/n$n.pid ]] && kill "$(cat "$dir/n$n.pid")" 2>/dev/null || true
    done
    ;;
  *) sed -n 2,11p "$0" >&2; exit 2 ;;
esac
