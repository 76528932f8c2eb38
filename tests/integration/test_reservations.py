#!/usr/bin/env python3
"""Integration test: reservations end to end. A real musterd, N real
muster-agents (1 x RTX 4090 each, simulated; N = 150, or $MUSTER_RESV_AGENTS)
and the muster CLI on 127.0.0.1.

    python3 test_reservations.py --bindir BUILD_DIR

The broker runs with --no-verify: what is tested is reservations, and 150
simulated agents behind one address are challenged together, which 2 cores
cannot answer in time. The reservation wants N-2 = 148 workers: a
self-service cluster holds 4 workers, a reservation wants N-2 with a minimum
of N-8 and gets the N-4 free ones (min fill respected,
never a worker out of the running cluster); a reservation that cannot be
filled answers NOT_MET and reserves nothing; releasing the self-service
cluster gives 2 of its workers to the short reservation before self-service
sees them (a 3-worker self-service request is then not met); a cluster carved
out of the reservation uses only its workers; a member of that cluster killed
with SIGKILL leaves the reservation, which takes a free worker from the pool,
and the cluster's seat is refilled from the reservation; releasing the
reservation frees its free members at once and the carved cluster's members
when that cluster ends; musterd killed with SIGKILL and restarted keeps the
reservation and the carved cluster (`musterd --check` and `--dump` show it). Prints "ok - ..." / "not ok - ..." per check, then
"N passed, M failed"; exits 0 only when every check passed.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Fatal, Watchdog
import test_clusters
from test_clusters import Fleet

N = int(os.environ.get("MUSTER_RESV_AGENTS", "150"))
WANT = N - 2  # the reservation wants all but 2 ...
MIN = N - 8   # ... at least this many
WATCHDOG_S = 160
AGENTS = {"r%02d" % i: ("RTX 4090", ("DE", "FR", "NL")[i % 3], "500/400") for i in range(N)}
test_clusters.AGENTS = AGENTS  # Fleet.start_agent reads the module's table
test_clusters.PRICED = {}


def alloc_counts(ws):
    out = {}
    for w in ws.values():
        k = w.get("alloc") if w["state"] == "online" else "offline"
        out[k] = out.get(k, 0) + 1
    return out


def members(j):
    return [m["worker_id"] for m in (j or {}).get("members", []) if m.get("worker_id")]


def run(f):
    st = f.start_broker()
    f.require(isinstance(st, dict), "1. musterd starts")
    for name in AGENTS:
        f.start_agent(name)

    def all_online():
        ws = f.workers()
        if ws and len(ws) == N and all(w["state"] == "online" and
                                       w.get("verification") == "passed" for w in ws.values()):
            return ws
        return None

    ws, waited = f.wait_for(all_online, 90.0, 0.25)
    f.note("%d agents online and verified after %.2f s" % (N, waited))
    f.require(ws is not None, "1. %d agents online and verified" % N)
    for name in AGENTS:
        with open(os.path.join(f.tmp, "state-" + name, "worker-id")) as fh:
            f.by_id[fh.read().strip()] = name

    # a running self-service cluster
    rc, out, err = f.cli("--json", "cluster", "create", "--gpu", "RTX 4090", "--workers", "4",
                         "--placement", "spread", "--hours", "1")
    a = test_clusters.loads(out) if rc == 0 else None
    f.require(a is not None and len(members(a)) == 4, "2. a self-service cluster of 4",
              "%s %s" % (rc, err))

    # not met: nothing reserved
    rc, out, err = f.cli("reserve", "create", "--gpu", "RTX 4090", "--workers", str(N + 6),
                         "--hours", "10", "--placement", "spread")
    ws = f.workers() or {}
    f.check(rc == 4 and alloc_counts(ws).get("free") == N - 4,
            "3. a reservation that cannot be filled: exit 4, nothing reserved",
            "%s %s %s" % (rc, err.strip()[:200], alloc_counts(ws)))
    rc, out, _ = f.cli("--json", "reserve", "list")
    j = test_clusters.loads(out) or {}
    f.check(rc == 0 and j.get("total") == 0, "3. no reservation listed", out[:200])

    # bad input changes nothing
    rc, _, err = f.cli("reserve", "create", "--gpu", "RTX 4090", "--workers", "3",
                       "--min-workers", "5", "--hours", "10")
    f.check(rc == 2, "3. --min-workers above --workers is bad usage (exit 2)", err)
    rc, _, err = f.cli("reserve", "show", "zz")
    f.check(rc == 1, "3. `reserve show` of a too-short prefix: exit 1", err)

    # min fill: wants N-2, at least N-8; N-4 are free
    rc, out, err = f.cli("--json", "reserve", "create", "--gpu", "RTX 4090", "--workers", str(WANT),
                         "--min-workers", str(MIN), "--hours", "200", "--placement", "spread",
                         "--owner", "mgd")
    r = test_clusters.loads(out) if rc == 0 else None
    f.require(r is not None, "4. a reservation with a minimum fill is accepted", err)
    rid = r["id"]
    f.check(r["filled"] == N - 4 and r["wanted"] == WANT and r["min_workers"] == MIN and
            r["free"] == N - 4 and r["in_use"] == 0,
            "4. it holds the %d free workers (min %d, wants %d)" % (N - 4, MIN, WANT),
            json.dumps(r)[:300])
    f.check(not set(members(r)) & set(members(a)),
            "4. no worker is taken out of the running cluster")
    f.check(r["discount_percent"] == 10 and
            r["price_per_hour_micro_usd"] < r["list_price_per_hour_micro_usd"],
            "4. 200 hours get the 10% commitment discount", json.dumps(r)[:300])
    ws = f.workers() or {}
    f.check(alloc_counts(ws).get("reserved") == N - 4,
            "4. `workers` shows %d reserved" % (N - 4),
            json.dumps(alloc_counts(ws)))

    # priority over self-service
    rc, _, err = f.cli("cluster", "release", a["id"])
    f.check(rc == 0, "5. the self-service cluster is released", err)

    def refilled():
        j = f.cli_json("reserve", "show", rid)
        return j if j and j["filled"] == WANT else None

    r2, _ = f.wait_for(refilled, 5.0, 0.1)
    f.check(r2 is not None, "5. the short reservation takes 2 of the freed workers first")
    rc, _, err = f.cli("cluster", "create", "--gpu", "RTX 4090", "--workers", "3",
                       "--placement", "spread", "--hours", "1")
    f.check(rc == 4, "5. a 3-worker self-service request is then not met (2 are free)",
            "%s %s" % (rc, err.strip()[:200]))

    # sub-allocation
    rc, out, err = f.cli("--json", "cluster", "create", "--gpu", "RTX 4090", "--workers", "3",
                         "--placement", "spread", "--hours", "2", "--from-reservation", rid[:8],
                         "--wait", "--wait-timeout", "30", timeout_ms=5000, wall_s=45)
    b = test_clusters.loads(out) if rc == 0 else None
    f.require(b is not None and b.get("state") == "ready",
              "6. a cluster carved out of the reservation is ready", "%s %s" % (rc, err[-300:]))
    r3 = f.cli_json("reserve", "show", rid) or {}
    f.check(set(members(b)) <= set(members(r3)), "6. it uses only the reservation's workers")
    f.check(r3.get("in_use") == 3 and r3.get("free") == WANT - 3,
            "6. the reservation shows 3 in use, %d free" % (WANT - 3), json.dumps(r3)[:300])
    f.check(all(m["cluster_id"] == b["id"] for m in r3.get("members", []) if m["in_use"]),
            "6. members in use name the cluster")
    ws = f.workers() or {}
    f.check(alloc_counts(ws).get("free") == 2, "6. the free pool is untouched (2 free)",
            json.dumps(alloc_counts(ws)))

    # a member killed: replaced within the reservation
    victim = members(b)[0]
    f.agents[f.by_id[victim]].signal(signal.SIGKILL)
    t0 = time.monotonic()

    def replaced():
        c = f.cluster(b["id"])
        rr = f.cli_json("reserve", "show", rid)
        if not c or not rr:
            return None
        cm = members(c)
        if victim in cm or len(cm) != 3 or victim in members(rr):
            return None
        return (c, rr) if rr["filled"] == WANT and set(cm) <= set(members(rr)) else None

    got, waited = f.wait_for(replaced, 15.0, 0.1)
    f.note("member replaced %.2f s after SIGKILL" % (time.monotonic() - t0))
    f.check(got is not None, "7. the killed member leaves the reservation and the cluster; "
            "the reservation takes a free worker, the cluster a reserved one")
    ws = f.workers() or {}
    f.check(alloc_counts(ws).get("free") == 1, "7. one worker left in the free pool",
            json.dumps(alloc_counts(ws)))

    # durable: the broker killed (SIGKILL) and restarted on its store keeps
    # the reservation, its members and the carved cluster
    argv = list(f.broker.argv)
    f.broker.signal(signal.SIGKILL)
    f.broker.wait(5)
    r = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=60)
    f.check(r.returncode == 0 and "1 reservations (1 active)" in r.stdout,
            "7. musterd --check passes and counts the reservation",
            (r.stdout + r.stderr)[-300:])
    r = subprocess.run(argv + ["--dump"], capture_output=True, text=True, timeout=60)
    d = test_clusters.loads(r.stdout) or {}
    dr = [x for x in d.get("reservations", []) if x.get("id") == rid]
    f.check(r.returncode == 0 and len(dr) == 1 and len(dr[0]["members"]) == WANT and
            sum(1 for m in dr[0]["members"] if m["in_use"]) == 3,
            "7. musterd --dump shows it with %d members, 3 in use" % WANT, r.stderr[-300:])
    f.broker = f.start("musterd-restarted", argv)

    def back():
        rr = f.cli_json("reserve", "show", rid)
        return rr if rr and rr["filled"] == WANT and rr["in_use"] == 3 and all(
            m["worker_state"] == "online" for m in rr["members"]) else None

    rr, waited = f.wait_for(back, 20.0, 0.2)
    f.check(rr is not None,
            "7. after a restart the reservation holds its %d members, 3 in use" % WANT)
    c = f.cluster(b["id"]) or {}
    f.check(c.get("state") in ("ready", "degraded") and set(members(c)) <= set(members(rr or {})),
            "7. the carved cluster is back with members of the reservation", json.dumps(c)[:200])
    # release: free members at once, members in use when their cluster ends
    rc, out, err = f.cli("--json", "reserve", "release", rid)
    rel = test_clusters.loads(out) if rc == 0 else None
    f.check(rel is not None and rel["state"] == "released", "8. the reservation is released",
            err)
    ws = f.workers() or {}
    counts = alloc_counts(ws)
    f.check(counts.get("free") == WANT - 2 and counts.get("allocated") == 3,
            "8. its free members are free at once; the carved cluster keeps its 3",
            json.dumps(counts))
    rc, _, err = f.cli("cluster", "release", b["id"])
    ws = f.workers() or {}
    counts = alloc_counts(ws)
    f.check(rc == 0 and counts.get("free") == N - 1,
            "8. when that cluster ends its members are free too", json.dumps(counts))
    rc, _, err = f.cli("reserve", "extend", rid, "--hours", "5")
    f.check(rc == 1 and "ended" in err, "8. an ended reservation cannot be extended", err)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", required=True)
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)

    def on_alarm(sig, frame):
        raise Watchdog("the test ran over %d s" % WATCHDOG_S)

    def on_term(sig, frame):
        raise SystemExit("killed by signal %d" % sig)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.alarm(WATCHDOG_S)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="muster-resv-") as tmp:
        f = Fleet(bindir, tmp)
        # What is tested here is reservations, not verification: 150
        # simulated agents on one host are challenged together (one address)
        # and cannot all prove their GPUs at once on 2 cores.
        f.broker_extra = ["--no-verify"]
        try:
            run(f)
            bad = [p.name for p in f.procs if SANITIZER_RE.search(p.text())]
            f.check(not bad and not f.cli_sanitizer_reports, "no sanitizer report", str(bad))
        except Fatal as e:
            f.note("stopping early: %s" % e)
        except Watchdog as e:
            f.check(False, "the run finishes in time", str(e))
        except SystemExit as e:
            f.check(False, "the run was not interrupted", str(e))
        except Exception as e:
            import traceback
            traceback.print_exc()
            f.check(False, "the test ran without an internal error", repr(e))
        finally:
            signal.alarm(0)
            f.cleanup()
            if f.failed:
                try:
                    f.dump_logs()
                except Exception:
                    pass
    f.note("took %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (f.passed, f.failed))
    return 0 if f.failed == 0 and f.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
