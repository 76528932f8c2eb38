#!/bin/sh
# test_run.sh - `muster-sim run` as a user meets it: help, bad usage (exit 2)
# and bad files (exit 1) with one-line errors and no report written, the
# real FTA and Alibaba excerpts replayed end to end into all three reports,
# and byte-identical reports for one seed.
#
# Usage: test_run.sh MUSTER_SIM TEST_DATA_DIR SHARED_DATA_DIR
set -u
SIM=$1
DATA=$2
SHARED=$3
TMP=$(mktemp -d /tmp/muster-sim-run.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect CODE CMD...: run CMD, check its exit status; output in $TMP/out, $TMP/err
expect() {
    want=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "exit $got, expected $want: $* ($(head -c 300 "$TMP/err"))"
}

# stderr is one line and contains TEXT
err_says() {
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "stderr is not one line: $(cat "$TMP/err")"
    grep -qF -- "$1" "$TMP/err" || fail "stderr lacks \"$1\": $(cat "$TMP/err")"
}

# no report may exist after a failed run
no_reports() {
    for f in "$TMP/r.json" "$TMP/r.csv" "$TMP/r.html"; do
        [ -e "$f" ] && fail "a report was written despite an error: $f ($*)"
    done
    rm -f "$TMP/r.json" "$TMP/r.csv" "$TMP/r.html"
}

FTA="$DATA/fta-lanl05-head.tab"
ALI="$DATA/alibaba-pods-excerpt.csv"
REPORTS="--report-json $TMP/r.json --report-csv $TMP/r.csv --report-html $TMP/r.html"

expect 0 "$SIM" run --help
grep -q "Usage: muster-sim run" "$TMP/out" || fail "run --help: no usage"
grep -q -- "--policy P" "$TMP/out" || fail "run --help lacks --policy"
expect 0 "$SIM" --help
grep -q "run --churn FILE" "$TMP/out" || fail "muster-sim --help does not list run"

# bad usage: exit 2, one line, no report
# shellcheck disable=SC2086
{
    expect 2 "$SIM" run $REPORTS
    err_says "--churn FILE is required"
    no_reports "no churn"
    expect 2 "$SIM" run --churn "$FTA" --churn-format fta --policy best $REPORTS
    err_says "--policy \"best\" is not pack, spread or as-requested"
    no_reports "bad policy"
    expect 2 "$SIM" run --churn "$FTA" --churn-format xml $REPORTS
    err_says "--churn-format"
    expect 2 "$SIM" run --churn "$FTA" --workload-format csv $REPORTS
    err_says "--workload-format"
    expect 2 "$SIM" run --churn "$FTA" --seed -3 $REPORTS
    err_says "--seed"
    expect 2 "$SIM" run --churn "$FTA" --heartbeat-ms 5 $REPORTS
    err_says "--heartbeat-ms"
    expect 2 "$SIM" run --churn "$FTA" --goodbye 1.5 $REPORTS
    err_says "--goodbye"
    expect 2 "$SIM" run --churn "$FTA" --ack-delay gamma:1 $REPORTS
    err_says "--ack-delay"
    expect 2 "$SIM" run --churn "$FTA" --min-tier none $REPORTS
    err_says "--min-tier"
    expect 2 "$SIM" run --churn "$FTA" --interval 0 $REPORTS
    err_says "--interval"
    expect 2 "$SIM" run --churn "$FTA" --keepalive 10 $REPORTS
    err_says "--keepalive"
    expect 2 "$SIM" run --churn "$FTA" --fill-gpus "" $REPORTS
    err_says "--fill-gpus"
    expect 2 "$SIM" run --churn "$FTA" --fill-tiers "warp:1" $REPORTS
    err_says "--fill-tiers"
    expect 2 "$SIM" run --churn "$FTA" --bogus $REPORTS
    err_says "unknown option \"--bogus\""
    expect 2 "$SIM" run --churn "$FTA" --report-json
    err_says "needs a value"
    expect 2 "$SIM" run --churn "$FTA" extra $REPORTS
    err_says "unexpected argument"
    no_reports "bad usage"

    # bad files: exit 1, naming the file, no report
    expect 1 "$SIM" run --churn "$TMP/missing.csv" $REPORTS
    err_says "$TMP/missing.csv"
    no_reports "missing churn"
    expect 1 "$SIM" run --churn "$FTA" --churn-format fta --workload "$TMP/missing.jsonl" $REPORTS
    err_says "$TMP/missing.jsonl"
    no_reports "missing workload"
    expect 1 "$SIM" run --churn "$FTA" $REPORTS
    err_says "$FTA:1:"
    no_reports "FTA read as CSV"
    printf 'time_s,node,event\n0,a,join\n5,a,vanish\n' >"$TMP/bad.csv"
    expect 1 "$SIM" run --churn "$TMP/bad.csv" $REPORTS
    err_says "$TMP/bad.csv:3:"
    no_reports "malformed churn"
    printf 'time_s,node,event,gpu_model,gpu_count,country\n0,a,join,RTX 9999,1,DE\n' \
        >"$TMP/model.csv"
    expect 1 "$SIM" run --churn "$TMP/model.csv" $REPORTS
    err_says "node a: GPU model \"RTX 9999\" is not in the catalog"
    no_reports "unknown model"
    printf 'time_s,node,event\n0,a,join\n' >"$TMP/ok.csv"
    printf '{"arrival_s":1,"duration_s":60,"workers":1,"gpus_per_worker":1,"region":"mars"}\n' \
        >"$TMP/mars.jsonl"
    expect 1 "$SIM" run --churn "$TMP/ok.csv" --workload "$TMP/mars.jsonl" $REPORTS
    err_says "\"mars\" is not a region"
    no_reports "unknown region"
    expect 1 "$SIM" run --churn "$TMP/ok.csv" --data-dir "$TMP/nowhere" $REPORTS
    err_says "$TMP/nowhere/gpus.json"
    no_reports "no data dir"
    expect 1 "$SIM" run --churn "$TMP/ok.csv" --report-json "$TMP/no/such/dir/r.json"
    err_says "$TMP/no/such/dir/r.json"
}

# the real excerpts end to end: LANL05 (FTA) churn, Alibaba pods as requests
# shellcheck disable=SC2086
expect 0 "$SIM" run --churn "$FTA" --churn-format fta --workload "$ALI" --workload-format alibaba \
    --seed 3 --check --quiet $REPORTS
grep -q "^requests: 63," "$TMP/out" || fail "FTA + Alibaba: $(cat "$TMP/out")"
[ -s "$TMP/err" ] && fail "--quiet run wrote to stderr: $(cat "$TMP/err")"
for f in r.json r.csv r.html; do
    [ -s "$TMP/$f" ] || fail "no $f"
    cp "$TMP/$f" "$TMP/first.$f"
done
if command -v python3 >/dev/null 2>&1; then
    python3 - "$TMP/r.json" <<'EOF' || fail "the JSON report does not parse or lacks keys"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("run", "engine", "workers", "requests", "clusters", "gpu_hours", "verification",
          "tasks"):
    assert k in r, k
assert r["requests"]["requests"] == 63
for k in ("met", "unmet", "invalid", "success_rate", "ready_rate", "unmet_by_constraint"):
    assert k in r["requests"], k
for k in ("time_to_ready", "degraded_ms", "member_losses", "reroutes", "reroute_latency", "events"):
    assert k in r["clusters"], k
for k in ("allocated", "ready", "online", "utilisation", "goodput"):
    assert k in r["gpu_hours"], k
assert r["verification"]["simulated"] is False
assert r["verification"]["false_positives"] is None
assert r["tasks"]["simulated"] is False and r["tasks"]["retries"] is None
assert r["workers"]["nodes"] == 10
EOF
else
    grep -q '"time_to_ready"' "$TMP/r.json" || fail "the JSON report lacks time_to_ready"
fi
head -1 "$TMP/r.csv" | grep -q "^time_s,online_workers,suspect_workers,online_gpus," ||
    fail "CSV header: $(head -1 "$TMP/r.csv")"
grep -q "<svg" "$TMP/r.html" || fail "no <svg in the HTML report"
grep -q "<script" "$TMP/r.html" && fail "script in the HTML report"

# same inputs and seed: the same bytes, reports and summary alike
cp "$TMP/out" "$TMP/first.out"
# shellcheck disable=SC2086
expect 0 "$SIM" run --churn "$FTA" --churn-format fta --workload "$ALI" --workload-format alibaba \
    --seed 3 --check --quiet $REPORTS
for f in r.json r.csv r.html; do
    cmp -s "$TMP/$f" "$TMP/first.$f" || fail "same seed, different $f"
done
cmp -s "$TMP/out" "$TMP/first.out" || fail "same seed, different summary"

# a generated fleet and workload: goodbyes, failures, reroutes; the policy
# shows in the report, and the core's invariants hold at the end
expect 0 "$SIM" generate churn --nodes 300 --days 3 --session weibull:0.6,20 \
    --gap lognormal:0.5,1 --seed 4 --out "$TMP/c.csv"
expect 0 "$SIM" generate workload --rate 30 --days 3 --duration lognormal:0.5,1 \
    --workers "1:4,2:2,4:1" --models "any:2,RTX 4090:1" --seed 5 --out "$TMP/w.jsonl"
for policy in pack spread; do
    expect 0 "$SIM" run --churn "$TMP/c.csv" --workload "$TMP/w.jsonl" --policy "$policy" \
        --goodbye 0.5 --ack-delay lognormal:0.5,0.5 --check --quiet \
        --report-json "$TMP/$policy.json"
    grep -q "\"policy\":.\"$policy\"" "$TMP/$policy.json" || fail "policy $policy not reported"
    grep -q '"cluster.member_lost"' "$TMP/$policy.json" || fail "$policy: no member lost"
done

# verification and tasks: options, inputs, both sections of the reports
rm -f "$TMP/r.json" "$TMP/r.csv" "$TMP/r.html"
# shellcheck disable=SC2086
{
    expect 0 "$SIM" run --help
    grep -q -- "--verify " "$TMP/out" || fail "run --help lacks --verify"
    grep -q -- "--tasks-per-worker" "$TMP/out" || fail "run --help lacks --tasks-per-worker"
    expect 2 "$SIM" run --churn "$FTA" --churn-format fta --jittery 0.1 $REPORTS
    err_says "--jittery needs --verify"
    no_reports "verification option without --verify"
    expect 2 "$SIM" run --churn "$FTA" --churn-format fta --verify --rtt-ms gamma:1 $REPORTS
    err_says "--rtt-ms: distribution \"gamma:1\""
    expect 2 "$SIM" run --churn "$FTA" --churn-format fta --verify --spoofers 2 $REPORTS
    err_says "--spoofers \"2\" is not a fraction"
    expect 2 "$SIM" run --churn "$FTA" --churn-format fta --verify --verify-light -1 $REPORTS
    err_says "--verify-light"
    no_reports "bad verification options"
    printf '%s\n%s\n' \
        '{"arrival_s":0,"duration_s":60,"workers":1,"gpus_per_worker":1,"tasks":2,"task_s":10}' \
        '{"arrival_s":1,"duration_s":60,"workers":1,"gpus_per_worker":1,"tasks":2,"task_s":10,"task_gpus":3}' \
        >"$TMP/tasks-bad.jsonl"
    expect 1 "$SIM" run --churn "$TMP/ok.csv" --workload "$TMP/tasks-bad.jsonl" $REPORTS
    err_says "$TMP/tasks-bad.jsonl:2:"
    err_says "\"task_gpus\" 3 is more than \"gpus_per_worker\" 1"
    no_reports "bad task field"
    printf '%s\n' '{"arrival_s":0,"duration_s":60,"workers":1,"gpus_per_worker":1,"task_s":10}' \
        >"$TMP/tasks-bad2.jsonl"
    expect 1 "$SIM" run --churn "$TMP/ok.csv" --workload "$TMP/tasks-bad2.jsonl" $REPORTS
    err_says "$TMP/tasks-bad2.jsonl:1: \"task_s\" without \"tasks\""
    no_reports "task field without tasks"
    expect 2 "$SIM" generate workload --rate 5 --duration exp:1 --tasks "4:1"
    err_says "--tasks needs --task-duration"
}
expect 0 "$SIM" generate churn --nodes 60 --days 1 --session weibull:0.6,20 --gap lognormal:0.5,1 \
    --gpus "RTX 4090:1" --spoofers 0.1 --seed 4 --out "$TMP/vc.csv"
expect 0 "$SIM" generate workload --rate 8 --days 1 --duration lognormal:0.5,0.5 \
    --workers "1:2,2:1" --tasks "0:1,6:2" --task-duration exp:0.2 --task-fail 0.05 \
    --task-retries 1 --seed 5 --out "$TMP/vw.jsonl"
grep -q '"tasks":6,"task_s":"exp:720"' "$TMP/vw.jsonl" ||
    fail "generated tasks: $(head -2 "$TMP/vw.jsonl")"
# shellcheck disable=SC2086
expect 0 "$SIM" run --churn "$TMP/vc.csv" --workload "$TMP/vw.jsonl" --verify --jittery 0.2 \
    --goodbye 0.3 --check --quiet $REPORTS
grep -q "^verification: " "$TMP/out" || fail "no verification summary: $(cat "$TMP/out")"
grep -q "^tasks: " "$TMP/out" || fail "no tasks summary: $(cat "$TMP/out")"
if command -v python3 >/dev/null 2>&1; then
    python3 - "$TMP/r.json" <<'EOF' || fail "verification and tasks in the JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
v, t = r["verification"], r["tasks"]
assert v["simulated"] is True and v["checks"] > 0, v
for k in ("false_positives", "false_negatives", "spoofers", "spoofers_caught", "honest_workers"):
    assert isinstance(v[k], (int, float)), k
assert 0 < v["spoofers"] <= v["spoof_events"], v
assert t["simulated"] is True and t["submitted"] > 0, t
assert isinstance(t["retries"], (int, float)) and 0 < t["goodput"] <= 1, t
assert r["workers"]["spoof_events_ignored"] == 0
EOF
fi
head -1 "$TMP/r.csv" | grep -q ",verify_checks,verify_not_ok,verify_failed,tasks_running," ||
    fail "CSV header: $(head -1 "$TMP/r.csv")"
grep -q "<h2>Verification</h2>" "$TMP/r.html" || fail "no verification table in the HTML"
grep -q "<h2>Tasks</h2>" "$TMP/r.html" || fail "no tasks table in the HTML"
for f in r.json r.csv r.html out; do cp "$TMP/$f" "$TMP/v1.$f"; done
# shellcheck disable=SC2086
expect 0 "$SIM" run --churn "$TMP/vc.csv" --workload "$TMP/vw.jsonl" --verify --jittery 0.2 \
    --goodbye 0.3 --check --quiet $REPORTS
for f in r.json r.csv r.html out; do
    cmp -s "$TMP/$f" "$TMP/v1.$f" || fail "verification and tasks: same seed, different $f"
done
# Alibaba pods as one task per worker, on the LANL05 hosts, verified
# shellcheck disable=SC2086
expect 0 "$SIM" run --churn "$FTA" --churn-format fta --workload "$ALI" --workload-format alibaba \
    --tasks-per-worker --verify --reverify 604800 --seed 3 --check --quiet $REPORTS
grep -q "^tasks: " "$TMP/out" || fail "--tasks-per-worker: $(cat "$TMP/out")"

# the whole LANL05 trace, when present: its first 90 days
if [ -r "$SHARED/fta-lanl05/event_trace.tab" ]; then
    expect 0 "$SIM" run --churn "$SHARED/fta-lanl05/event_trace.tab" --churn-format fta \
        --workload "$TMP/w.jsonl" --until 7776000 --check --quiet
    grep -q "3577 nodes" "$TMP/out" || fail "LANL05: $(cat "$TMP/out")"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "all run checks passed"
