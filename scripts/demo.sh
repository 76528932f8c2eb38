#!/usr/bin/env bash
# muster's main job, locally: install what is missing, build, start a broker
# (musterd) and five agents with simulated GPUs in five countries, show the
# fleet, search it, get a quote, rent a cluster and wait until it is ready,
# and show what happens with a request the fleet cannot serve. One agent is
# then killed without warning to show liveness at work. Everything listens
# on 127.0.0.1 only and is stopped on exit; pass --keep to leave the fleet
# running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1
scripts/deps.sh
echo "== building" >&2
BUILD_DIR=build scripts/build.sh

port=${MUSTER_DEMO_PORT:-7710}
agents_ep="tcp://127.0.0.1:$port"
clients_ep="tcp://127.0.0.1:$((port + 1))"
events_ep="tcp://127.0.0.1:$((port + 2))"
work=$(mktemp -d /tmp/muster-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

muster() { build/muster --broker "$clients_ep" "$@"; }

echo "== starting musterd (logs: $work/musterd.log)" >&2
build/musterd --agent-endpoint "$agents_ep" --client-endpoint "$clients_ep" \
  --event-endpoint "$events_ep" --state-dir "$work/musterd" 2>"$work/musterd.log" &
pids+=($!)

start_agent() { # name country gpus bandwidth
  build/muster-agent --broker "$agents_ep" --state-dir "$work/$1" --hostname "$1" \
    --country "$2" --simulate-gpu "$3" --bandwidth "$4" 2>"$work/$1.log" &
  pids+=($!)
}
echo "== starting 5 agents with simulated GPUs" >&2
start_agent fra-01 DE "RTX 4090:2" 500/400
start_agent ams-01 NL "RTX 4090:4" 900/700
start_agent nyc-01 US "H100:8" 2000/1500
start_agent tyo-01 JP "A100 80GB:4" 800/600
start_agent sao-01 BR "RTX 3090:1" 120/80
sao_pid=${pids[-1]}

online() { muster status --json 2>/dev/null | grep -oE '"workers_online":[[:space:]]*[0-9]+' | grep -oE '[0-9]+$' || echo 0; }
for _ in $(seq 1 100); do
  [ "$(online)" = 5 ] && break
  sleep 0.1
done
if [ "$(online)" != 5 ]; then
  echo "demo: the agents did not all register; logs follow" >&2
  tail -n 5 "$work"/*.log >&2
  exit 1
fi

show() { # print the command (quoting what has spaces), then run it
  echo
  printf '$ muster'
  for a in "$@"; do
    case "$a" in *" "*) printf ' "%s"' "$a" ;; *) printf ' %s' "$a" ;; esac
  done
  echo
  muster "$@"
}
show workers
show status

# A self-service user: what is there, what would it cost, then a cluster.
show search --gpu "RTX 4090"
show quote --gpu "RTX 4090" --workers 2 --region europe --bandwidth medium --hours 6
echo
echo "\$ muster cluster create --gpu \"RTX 4090\" --workers 2 --region europe --bandwidth medium --hours 6 --wait"
cluster=$(muster cluster create --gpu "RTX 4090" --workers 2 --region europe --bandwidth medium \
  --hours 6 --owner demo --wait)
echo "$cluster"
show cluster show "$cluster"
# A request the fleet cannot serve: the reason, and what would work instead.
show cluster create --gpu H100 --gpus-per-worker 8 --workers 2 --hours 6 || true

echo
echo "== killing sao-01 with SIGKILL: it stops heartbeating and goes suspect, then offline" >&2
{ kill -9 "$sao_pid" && wait "$sao_pid"; } 2>/dev/null || true
sleep 3.5
show workers --state offline
show cluster list

if [ $keep = 1 ]; then
  echo
  echo "Fleet running: muster --broker $clients_ep workers   (Ctrl-C to stop)"
  wait
fi
