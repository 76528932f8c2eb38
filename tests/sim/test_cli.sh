#!/bin/sh
# test_cli.sh - muster-sim as a user meets it: help, exit codes (0 ok,
# 1 bad file, 2 bad usage), one-line errors naming FILE:LINE, byte-identical
# output for one seed, and the real traces end to end.
#
# Usage: test_cli.sh MUSTER_SIM TEST_DATA_DIR SHARED_DATA_DIR
set -u
SIM=$1
DATA=$2
SHARED=$3
TMP=$(mktemp -d /tmp/muster-sim-cli.XXXXXX)
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

# help on every command, exit 0, on stdout
for cmd in "" analyze "generate churn" "generate workload" "convert churn"; do
    # shellcheck disable=SC2086
    expect 0 "$SIM" $cmd --help
    grep -q Usage "$TMP/out" || fail "no usage in: $cmd --help"
done
expect 0 "$SIM" generate churn --help
grep -q -- "--spoofers FRAC" "$TMP/out" || fail "generate churn --help lacks --spoofers"
expect 0 "$SIM" --version

# bad usage: exit 2, one line
expect 2 "$SIM"
expect 2 "$SIM" frobnicate
err_says "unknown command"
expect 2 "$SIM" analyze
err_says "--churn"
expect 2 "$SIM" analyze --churn x --workload y
expect 2 "$SIM" analyze --churn
err_says "needs a value"
expect 2 "$SIM" analyze --churn x --bogus
err_says "unknown option \"--bogus\""
expect 2 "$SIM" analyze --churn x --format xml
err_says "--format"
expect 2 "$SIM" analyze --churn x extra
expect 2 "$SIM" generate
expect 2 "$SIM" generate nodes
expect 2 "$SIM" generate churn --nodes 10
err_says "--session and --gap are required"
expect 2 "$SIM" generate churn --session weibull:0.5 --gap exp:1
err_says "--session"
expect 2 "$SIM" generate churn --session exp:1 --gap exp:1 --nodes -4
err_says "--nodes"
expect 2 "$SIM" generate churn --session exp:1 --gap exp:1 --countries USA:1
expect 2 "$SIM" generate workload --rate 5
err_says "required"
expect 2 "$SIM" convert churn --churn x --fill-regions europe:1
expect 2 "$SIM" convert churn --churn x --fill-gpus ""

# unreadable and malformed files: exit 1, naming FILE (and LINE)
expect 1 "$SIM" analyze --churn "$TMP/missing.csv"
err_says "$TMP/missing.csv"
printf 'time_s,node,event\n0,a,join\n1,a,explode\n' >"$TMP/bad.csv"
expect 1 "$SIM" analyze --churn "$TMP/bad.csv"
err_says "$TMP/bad.csv:3:"
[ -s "$TMP/out" ] && fail "output despite an error"
expect 1 "$SIM" analyze --churn "$DATA/fta-lanl05-head.tab"
err_says "fta"
expect 1 "$SIM" analyze --workload "$DATA/nasa-ipsc-excerpt.swf" --format alibaba
printf '{"nodes": 5, "session": 3}\n' >"$TMP/params.json"
expect 1 "$SIM" generate churn --params "$TMP/params.json" --gap exp:1
err_says "$TMP/params.json"

# generate: same seed, same bytes; another seed, other bytes; --out is atomic
set -- --nodes 50 --days 2 --session weibull:0.6,4 --gap lognormal:1,1 --spoofers 0.1 \
    --gpus "RTX 4090:3,A100 80GB:1" --countries "US:1:-5,DE:1:1" --diurnal 0.5
expect 0 "$SIM" generate churn "$@" --seed 7 --out "$TMP/a.csv"
[ -s "$TMP/out" ] && fail "generate --out printed something"
expect 0 "$SIM" generate churn "$@" --seed 7
cmp -s "$TMP/out" "$TMP/a.csv" || fail "same seed, different bytes"
expect 0 "$SIM" generate churn "$@" --seed 8 --out "$TMP/b.csv"
cmp -s "$TMP/a.csv" "$TMP/b.csv" && fail "different seeds, same bytes"
head -1 "$TMP/a.csv" | grep -qx "time_s,node,event,gpu_model,gpu_count,country" ||
    fail "unexpected CSV header"
expect 0 "$SIM" analyze --churn "$TMP/a.csv"
grep -q "nodes 50 (50 with events)" "$TMP/out" ||
    fail "analyze of a generated trace: $(cat "$TMP/out")"
printf '{"nodes": 50, "days": 2, "session": "weibull:0.6,4", "gap": "lognormal:1,1",
 "spoofers": 0.1, "gpus": "RTX 4090:3,A100 80GB:1", "countries": "US:1:-5,DE:1:1",
 "diurnal": 0.5, "seed": 1}\n' >"$TMP/p.json"
expect 0 "$SIM" generate churn --params "$TMP/p.json" --seed 7
cmp -s "$TMP/out" "$TMP/a.csv" || fail "--params with --seed differs from the same flags"

set -- --rate 20 --days 1 --duration lognormal:0,1 --workers "1:3,4:1" --models "any:1,T4:1"
expect 0 "$SIM" generate workload "$@" --seed 3 --out "$TMP/w1.jsonl"
expect 0 "$SIM" generate workload "$@" --seed 3 --out "$TMP/w2.jsonl"
cmp -s "$TMP/w1.jsonl" "$TMP/w2.jsonl" || fail "workload: same seed, different bytes"
expect 0 "$SIM" analyze --workload "$TMP/w1.jsonl" --json
grep -q '"requests"' "$TMP/out" || fail "analyze --workload --json"

# the real excerpts through every reader
expect 0 "$SIM" analyze --churn "$DATA/fta-lanl05-head.tab" --format fta
grep -q "nodes 10 (10 with events)" "$TMP/out" || fail "FTA excerpt: $(cat "$TMP/out")"
expect 0 "$SIM" analyze --workload "$DATA/alibaba-pods-excerpt.csv" --format alibaba
grep -q "63 requests kept" "$TMP/out" || fail "Alibaba excerpt: $(cat "$TMP/out")"
expect 0 "$SIM" analyze --workload "$DATA/nasa-ipsc-excerpt.swf" --format swf --json
grep -q '"requests":.48,' "$TMP/out" || fail "SWF excerpt: $(cat "$TMP/out")"

# convert: FTA -> native CSV with filled-in countries, which analyzes the same
expect 0 "$SIM" convert churn --churn "$DATA/fta-lanl05-head.tab" --format fta \
    --fill-countries "US:1,DE:1" --seed 5 --out "$TMP/fta.csv"
# (what the readers saw differs: the CSV reader counts rows, not intervals)
strip='/^\t"read":/,/^\t},/d; /"source"\|"format"\|"origin_unix"/d'
expect 0 "$SIM" analyze --churn "$DATA/fta-lanl05-head.tab" --format fta --json
sed -e "$strip" "$TMP/out" >"$TMP/fta.json"
expect 0 "$SIM" analyze --churn "$TMP/fta.csv" --json
sed -e "$strip" "$TMP/out" >"$TMP/csv.json"
grep -q '"unavailable"' "$TMP/csv.json" || fail "no unavailable intervals in the CSV analysis"
cmp -s "$TMP/fta.json" "$TMP/csv.json" ||
    fail "FTA and its CSV conversion analyze differently: $(diff "$TMP/fta.json" "$TMP/csv.json")"
expect 0 "$SIM" convert workload --workload "$DATA/alibaba-pods-excerpt.csv" --format alibaba \
    --fill-regions "europe:1,asia-east:1"
[ "$(grep -c '"region"' "$TMP/out")" -eq 63 ] || fail "convert workload: regions not filled"

# the whole LANL05 trace, when present
if [ -r "$SHARED/fta-lanl05/event_trace.tab" ]; then
    expect 0 "$SIM" analyze --churn "$SHARED/fta-lanl05/event_trace.tab" --format fta
    grep -q "^nodes 3577 (3577 with events)" "$TMP/out" || fail "LANL05: $(head -5 "$TMP/out")"
    grep -q "best: weibull" "$TMP/out" || fail "LANL05: availability not best fitted by weibull"
    grep -q "best: lognormal" "$TMP/out" ||
        fail "LANL05: unavailability not best fitted by lognormal"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "all CLI checks passed"
