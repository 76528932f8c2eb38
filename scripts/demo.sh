#!/usr/bin/env bash
# muster's main job, locally: install what is missing, build, start a broker
# (musterd) and six agents with simulated GPUs in five countries, plus one
# spoofer that claims an H100 it does not have; watch every worker prove its
# GPU (proof of work) and the spoofer fail; search the fleet, get a quote,
# rent a cluster and wait until it is ready, and show what happens with a
# request the fleet cannot serve. A small task graph then runs on the
# cluster (a preparation step, four GPU shards, a report) and its results
# are printed. Finally a member of the cluster is killed without warning
# while it runs tasks: it is replaced, and its tasks run elsewhere. Everything listens on 127.0.0.1 only and is
# stopped on exit; pass --keep to leave the fleet running until Ctrl-C.
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
  # Each process says goodbye and stops what it runs: an agent whose
  # broker is stopping too lingers 500 ms for its goodbye. Give them 5 s.
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      echo "demo: process $p did not stop within 5 s of SIGTERM; killing it" >&2
      { kill -9 "$p" && wait "$p"; } 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

muster() { build/muster --broker "$clients_ep" "$@"; }

echo "== starting musterd (logs: $work/musterd.log)" >&2
# Simulated GPUs prove themselves with a small proof of work, padded to the
# time the claimed model needs (--verify-scale: see docs/operator.md).
build/musterd --agent-endpoint "$agents_ep" --client-endpoint "$clients_ep" \
  --event-endpoint "$events_ep" --state-dir "$work/musterd" --verify-scale 2000 --verify-scratch-kib 1 \
  2>"$work/musterd.log" &
pids+=($!)

declare -A agent_pid
start_agent() { # name country gpus bandwidth [agent flags]
  local name=$1 country=$2 gpus=$3 bw=$4
  shift 4
  build/muster-agent --broker "$agents_ep" --state-dir "$work/$name" --hostname "$name" \
    --country "$country" --simulate-gpu "$gpus" --bandwidth "$bw" "$@" 2>"$work/$name.log" &
  pids+=($!)
  agent_pid[$name]=$!
}
echo "== starting 6 agents with simulated GPUs, and a spoofer" >&2
start_agent fra-01 DE "RTX 4090:2" 500/400
start_agent ams-01 NL "RTX 4090:4" 900/700
start_agent par-01 FR "RTX 4090:2" 600/500
start_agent nyc-01 US "H100:8" 2000/1500
start_agent tyo-01 JP "A100 80GB:4" 800/600
start_agent sao-01 BR "RTX 3090:1" 120/80
# claims an H100, computes at a third of its speed
start_agent fake-01 US "H100:1" 2000/1500 --sim-speed 0.33

count() { # how many workers' JSON field $1 has the value $2
  muster workers --json 2>/dev/null | grep -oE "\"$1\":[[:space:]]*\"$2\"" | wc -l || true
}
echo "== waiting for every worker to prove its GPU" >&2
for _ in $(seq 1 150); do
  [ "$(count verification passed)" = 6 ] && [ "$(count verification failed)" = 1 ] && break
  sleep 0.1
done
if [ "$(count verification passed)" != 6 ]; then
  echo "demo: the agents were not all verified; logs follow" >&2
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

# The JSON flattened, to pick fields with grep.
flat() { muster "$@" --json | tr -d ' \t\n'; }

# Work on the cluster: a graph of tasks (docs/cli.md, "Tasks"). Each shard
# holds one GPU (CUDA_VISIBLE_DEVICES says which) and returns its sum.
cat >"$work/graph.json" <<'GRAPH'
{"defaults": {"cpus": 1},
 "tasks": [
  {"name": "prepare", "argv": ["sh", "-c", "echo preparing the shards; sleep 0.2"]},
  {"name": "shard-0", "after": ["prepare"], "gpus": 1, "result_file": "sum",
   "argv": ["sh", "-c", "echo shard 0 on GPU $CUDA_VISIBLE_DEVICES; seq 1 250000 | awk '{s+=$1} END {printf \"%.0f\\n\", s}' > sum"]},
  {"name": "shard-1", "after": ["prepare"], "gpus": 1, "result_file": "sum",
   "argv": ["sh", "-c", "echo shard 1 on GPU $CUDA_VISIBLE_DEVICES; seq 250001 500000 | awk '{s+=$1} END {printf \"%.0f\\n\", s}' > sum"]},
  {"name": "shard-2", "after": ["prepare"], "gpus": 1, "result_file": "sum",
   "argv": ["sh", "-c", "echo shard 2 on GPU $CUDA_VISIBLE_DEVICES; seq 500001 750000 | awk '{s+=$1} END {printf \"%.0f\\n\", s}' > sum"]},
  {"name": "shard-3", "after": ["prepare"], "gpus": 1, "result_file": "sum",
   "argv": ["sh", "-c", "echo shard 3 on GPU $CUDA_VISIBLE_DEVICES; seq 750001 1000000 | awk '{s+=$1} END {printf \"%.0f\\n\", s}' > sum"]},
  {"name": "report", "after": ["shard-0", "shard-1", "shard-2", "shard-3"],
   "argv": ["sh", "-c", "echo all four shards are done"]}
 ]}
GRAPH
show task submit --cluster "$cluster" --file "$work/graph.json" --wait
show task list --cluster "$cluster"
echo
echo "# the shards' results (their result files), and their sum"
total=0
for n in 1 2 3 4; do
  r=$(flat task show "$cluster/$n" | grep -oE '"result_text":"[0-9]+' | grep -oE '[0-9]+$' || true)
  echo "shard $((n - 1)): ${r:-?}"
  total=$((total + ${r:-0}))
done
echo "sum of 1..1000000 = $total"
show task logs "$cluster/1"

fake=$(flat workers | grep -oE '"id":"[0-9a-f-]+","hostname":"fake-01"' | cut -d'"' -f4 || true)
[ -n "$fake" ] && show workers show "$fake"

# Kill a member of the cluster without warning while it runs tasks: its
# connection closes, it is offline after the reconnect grace, a replacement
# takes its seat, and the tasks it ran start again elsewhere.
first=$(muster task submit --cluster "$cluster" --gpus 1 --json -- sleep 3 | tr -d ' \t\n' |
  grep -oE '"first":[0-9]+' | cut -d: -f2)
for _ in 1 2 3; do muster task submit --cluster "$cluster" --gpus 1 -- sleep 3 >/dev/null; done
sleep 0.5
victim=$(flat cluster show "$cluster" | grep -oE '"hostname":"[a-z]+-01"' | head -1 | cut -d'"' -f4 || true)
echo
echo "== killing cluster member $victim with SIGKILL while it runs tasks: it is replaced" >&2
{ kill -9 "${agent_pid[$victim]}" && wait "${agent_pid[$victim]}"; } 2>/dev/null || true
sleep 2.5
show cluster show "$cluster"
show task wait --cluster "$cluster" "$cluster/$first" "$cluster/$((first + 1))" "$cluster/$((first + 2))" "$cluster/$((first + 3))" --timeout 30 || true
show task list --cluster "$cluster" --state succeeded --limit 20

if [ $keep = 1 ]; then
  echo
  echo "Fleet running: muster --broker $clients_ep workers   (Ctrl-C to stop)"
  wait
fi
