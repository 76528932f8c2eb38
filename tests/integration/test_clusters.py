#!/usr/bin/env python3
"""Integration test: self-service clusters end to end. A real musterd, 20 real
muster-agents with simulated GPUs and the muster CLI on 127.0.0.1.

    python3 test_clusters.py --bindir BUILD_DIR

The fleet: 12 x 1 RTX 4090 in DE/FR/NL/US at tiers low to high, 4 x 8 H100 in
the US (ultra) and 4 x 4 A100 80GB in JP (high). Covers `muster quote` (prices,
nothing reserved), `muster search` (counts add up to the free workers),
several `cluster create --wait` clients at once (no worker in two clusters,
`workers` shows who is allocated to what), a request that cannot be met
(exit 4 with alternatives, nothing allocated), bad input (exit 2 before
anything is sent, exit 1 with the broker's suggestion), `cluster show`,
`extend`, `release` (members free again), `watch` (sees the release and
exits), and a member killed with SIGKILL (the cluster turns degraded within
the liveness window). Prints one "ok - ..." / "not ok - ..." line per check
and a final "N passed, M failed"; exits 0 only when every check passed.

Every wait has a deadline, ports are picked free on 127.0.0.1, every process
started is killed on the way out (children also die with this process, via
PR_SET_PDEATHSIG), and the temporary directory is removed. Standard library
only.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Fatal, Proc, Watchdog, free_port, set_pdeathsig

HEARTBEAT_MS = 200
LIVENESS = 3
WINDOW_S = HEARTBEAT_MS * LIVENESS / 1000.0  # silence before offline
WATCHDOG_S = 160  # the whole run, whatever happens (ctest gives 180)
HERE = os.path.dirname(os.path.abspath(__file__))
CATALOG = os.path.join(HERE, "..", "..", "data", "gpus.json")

# name: (--simulate-gpu, --country, --bandwidth); the first two 4090s ask a
# price of their own (PRICED), the others take the broker's default.
AGENTS = {}
PRICED = {"g00": "0.40", "g01": "0.40"}
for i, (cc, bw) in enumerate([("DE", "500/400"), ("DE", "500/400"), ("DE", "1000/800"),
                              ("FR", "200/100"), ("FR", "500/400"), ("FR", "500/400"),
                              ("NL", "1000/800"), ("NL", "500/400"), ("NL", "200/100"),
                              ("US", "500/400"), ("US", "1000/800"), ("US", "200/100")]):
    AGENTS["g%02d" % i] = ("RTX 4090", cc, bw)
for i in range(4):
    AGENTS["h%02d" % i] = ("H100:8", "US", "2000/1500")
for i in range(4):
    AGENTS["a%02d" % i] = ("A100 80GB:4", "JP", "1000/800")
N_4090 = 12


def loads(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


class Fleet:
    def __init__(self, bindir, tmp):
        self.bindir = bindir
        self.tmp = tmp
        self.procs = []  # every Proc ever started, for cleanup and logs
        self.clis = []   # CLI processes started in the background
        self.passed = 0
        self.failed = 0
        self.ports = None
        self.broker = None
        self.agents = {}    # name -> Proc
        self.by_id = {}     # worker id -> agent name
        self.cli_sanitizer_reports = []

    # --- reporting ---------------------------------------------------------
    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % what, flush=True)
        else:
            self.failed += 1
            print("not ok - %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return cond

    def require(self, cond, what, detail=""):
        if not self.check(cond, what, detail):
            raise Fatal(what)

    @staticmethod
    def note(msg):
        print("# %s" % msg, flush=True)

    # --- processes ---------------------------------------------------------
    def bin(self, name):
        return os.path.join(self.bindir, name)

    def client_ep(self):
        return "tcp://127.0.0.1:%d" % self.ports[1]

    def agent_ep(self):
        return "tcp://127.0.0.1:%d" % self.ports[0]

    def start(self, name, argv):
        p = Proc(name, argv, os.path.join(self.tmp, "%s.log" % name))
        self.procs.append(p)
        return p

    def cli_argv(self, args, timeout_ms=3000):
        return [self.bin("muster"), "--broker", self.client_ep(),
                "--timeout", str(timeout_ms)] + list(args)

    def _sanitizer(self, argv, err):
        if SANITIZER_RE.search(err):
            self.cli_sanitizer_reports.append("%s\n%s" % (" ".join(argv), err))

    def cli(self, *args, timeout_ms=3000, wall_s=None):
        """Run the muster CLI: (exit status, stdout, stderr)."""
        argv = self.cli_argv(args, timeout_ms)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=wall_s or timeout_ms / 1000.0 + 10,
                               preexec_fn=set_pdeathsig)
        except subprocess.TimeoutExpired:
            return None, "", "muster did not exit in time"
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        self._sanitizer(argv, err)
        return r.returncode, out, err

    def cli_bg(self, *args, timeout_ms=3000):
        """Start the CLI in the background: a Popen with pipes."""
        argv = self.cli_argv(args, timeout_ms)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=set_pdeathsig)
        p.argv_text = " ".join(argv)
        self.clis.append(p)
        return p

    def finish_bg(self, p, timeout_s):
        """(exit status, stdout, stderr) of a background CLI; None on timeout."""
        try:
            out, err = p.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return None, out.decode(errors="replace"), err.decode(errors="replace")
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        self._sanitizer([p.argv_text], err)
        return p.returncode, out, err

    def cli_json(self, *args, timeout_ms=3000):
        rc, out, err = self.cli("--json", *args, timeout_ms=timeout_ms)
        return loads(out) if rc == 0 else None

    def workers(self):
        """{id: worker} from `muster workers --json`, or None."""
        j = self.cli_json("workers")
        if j is None or not isinstance(j.get("workers"), list):
            return None
        return {w["id"]: w for w in j["workers"]}

    def cluster(self, cid):
        return self.cli_json("cluster", "show", cid)

    def search_4090(self):
        """(sum of rows' workers, total_workers) of `search --gpu "RTX 4090"`."""
        j = self.cli_json("search", "--gpu", "RTX 4090")
        if j is None:
            return None
        return sum(r["workers"] for r in j.get("rows", [])), j.get("total_workers")

    def wait_for(self, pred, deadline_s, interval=0.05):
        t0 = time.monotonic()
        while True:
            v = pred()
            if v:
                return v, time.monotonic() - t0
            if time.monotonic() - t0 >= deadline_s:
                return None, time.monotonic() - t0
            time.sleep(interval)

    def start_broker(self):
        for attempt in range(5):
            ports = [free_port(), free_port(), free_port()]
            if len(set(ports)) < 3:
                continue
            self.ports = ports
            argv = [self.bin("musterd"),
                    "--agent-endpoint", "tcp://127.0.0.1:%d" % ports[0],
                    "--client-endpoint", "tcp://127.0.0.1:%d" % ports[1],
                    "--event-endpoint", "tcp://127.0.0.1:%d" % ports[2],
                    "--heartbeat-ms", str(HEARTBEAT_MS), "--liveness", str(LIVENESS),
                    # its own store: never the user's default state directory
                    "--state-dir", os.path.join(self.tmp, "broker-state-%d" % attempt),
                    "--durability", "process",
                    # simulated GPUs: a small proof of work, padded to the model's time
                    "--verify-scale", "2000", "--verify-scratch-kib", "1",
                    "--verify-target-ms", "300"] + list(getattr(self, "broker_extra", []))
            p = self.start("musterd-%d" % attempt, argv)

            def answers():
                if not p.alive():
                    return "died"
                rc, out, _ = self.cli("status", "--json", timeout_ms=500)
                return loads(out) if rc == 0 else None

            st, waited = self.wait_for(answers, 10.0, 0.1)
            if isinstance(st, dict):
                self.note("musterd answered after %.2f s (pid %d)" % (waited, p.pid))
                self.broker = p
                return st
            p.wait(0.5)
            if st == "died" and "cannot bind" in p.text():
                continue
            p.signal(signal.SIGKILL)
            return None
        return None

    def start_agent(self, name):
        model, cc, bw = AGENTS[name]
        state = os.path.join(self.tmp, "state-" + name)
        argv = [self.bin("muster-agent"), "--broker", self.agent_ep(), "--state-dir", state,
                "--reconnect-min-ms", "100", "--reconnect-max-ms", "400",
                "--simulate-gpu", model, "--country", cc, "--bandwidth", bw,
                "--hostname", "host-" + name, "--log-level", "warn"]
        if name in PRICED:
            argv += ["--price", PRICED[name]]
        p = self.start("agent-" + name, argv)
        self.agents[name] = p
        return p

    def cleanup(self):
        for p in self.clis:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=2)
            except Exception:
                pass
        for p in self.procs:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs:
            if p.wait(max(0.0, deadline - time.monotonic())) is None:
                p.signal(signal.SIGKILL)
                p.wait(2)
        for p in self.procs:
            p.close()

    def dump_logs(self):
        for p in self.procs:
            print("#### log of %s (pid %d, exit %s)" % (p.name, p.pid, p.p.returncode))
            for line in p.text().splitlines()[-200:]:
                print("#   " + line)
        for r in self.cli_sanitizer_reports:
            print("#### sanitizer report from the CLI")
            for line in r.splitlines():
                print("#   " + line)
        sys.stdout.flush()


def allocated(ws):
    return {i: w for i, w in ws.items() if w.get("alloc") != "free"}


def free_4090(ws):
    return [w for w in ws.values() if w["gpu_model"] == "RTX 4090" and w["state"] == "online"
            and w.get("alloc") == "free" and w["tier"] != "none"]


def member_ids(c):
    return [m["worker_id"] for m in c.get("members", []) if m.get("worker_id")]


# --- the checks ---------------------------------------------------------------


def check_fleet(f):
    st = f.start_broker()
    f.require(isinstance(st, dict), "1. musterd starts and answers `muster status`")
    for name in AGENTS:
        f.start_agent(name)

    def all_online():
        ws = f.workers()
        # hireable once online and verified (proof of work passed)
        if ws and len(ws) == len(AGENTS) and all(w["state"] == "online" and
                                                 w.get("verification") == "passed"
                                                 for w in ws.values()):
            return ws
        return None

    # A deadline, not a speed check: under ASan on a loaded machine 20
    # agents take a while to register and prove their GPUs.
    ws, waited = f.wait_for(all_online, 60.0, 0.2)
    f.note("%d agents online after %.2f s" % (len(AGENTS), waited))
    f.require(ws is not None, "1. %d agents register and are online" % len(AGENTS),
              "fleet: %s" % json.dumps({i: (w["hostname"], w["state"])
                                        for i, w in (f.workers() or {}).items()}))
    for name in AGENTS:
        try:
            with open(os.path.join(f.tmp, "state-" + name, "worker-id")) as fh:
                f.by_id[fh.read().strip()] = name
        except OSError:
            pass
    f.check(len(f.by_id) == len(AGENTS) and set(f.by_id) == set(ws),
            "1. every agent's stored worker id is listed")
    f.check(all(w.get("alloc") == "free" and w.get("cluster_id") == "" for w in ws.values()),
            "1. every worker starts free", json.dumps(allocated(ws)))
    f.check(all(isinstance(w.get("price_micro_usd"), (int, float)) and w["price_micro_usd"] > 0
                and isinstance(w.get("uptime"), (int, float)) for w in ws.values()),
            "1. `workers --json` carries price_micro_usd and uptime")
    rc, out, _ = f.cli("workers")
    f.check(rc == 0 and "$/GPU-H" in out and "UPTIME" in out,
            "1. `muster workers` table shows price and uptime columns", out[:300])
    any_id = next(iter(ws))
    rc, out, _ = f.cli("workers", "show", any_id[:8])
    f.check(rc == 0 and "price:" in out and "uptime:" in out and "alloc:" in out,
            "1. `muster workers show` shows price, uptime and alloc", out)


def check_search(f):
    ws = f.workers() or {}
    s = f.search_4090()
    free = free_4090(ws)
    f.check(s is not None and s[0] == len(free) == s[1] and len(free) == N_4090,
            "2. `search --gpu \"RTX 4090\"` rows add up to the %d free 4090 workers" % N_4090,
            "rows %s, free %d" % (s, len(free)))
    j = f.cli_json("search")
    f.check(j is not None and j.get("total_workers") == len(AGENTS)
            and sum(r["workers"] for r in j.get("rows", [])) == len(AGENTS),
            "2. `search` without filters counts all %d free workers" % len(AGENTS),
            json.dumps(j)[:400])
    j = f.cli_json("search", "--gpu", "H100", "--bandwidth", "ultra", "--region",
                   "north-america")
    f.check(j is not None and j.get("total_workers") == 4
            and all(r["gpu_model"] == "H100 SXM" and r["tier"] == "ultra" for r in j["rows"]),
            "2. `search --gpu H100 --bandwidth ultra --region north-america` finds the 4 H100s",
            json.dumps(j)[:400])
    j = f.cli_json("search", "--gpu", "RTX 4090", "--max-price", "0.45")
    f.check(j is not None and j.get("total_workers") == len(PRICED)
            and all(r["max_price_micro_usd"] == 400000 for r in j["rows"]),
            "2. `search --max-price 0.45` finds the %d 4090s asking 0.40" % len(PRICED),
            json.dumps(j)[:400])
    rc, out, err = f.cli("search", "--sort", "count")
    f.check(rc == 0 and "MODEL" in out and "free worker" in out,
            "2. `muster search` prints a table and a total line", out + err)


def check_quote(f):
    before = f.search_4090()
    rc, out, err = f.cli("quote", "--gpu", "RTX 4090", "--workers", "4", "--hours", "2",
                         "--json")
    q = loads(out) if rc == 0 else None
    f.check(q is not None and q.get("workers") == 4 and q.get("gpus") == 4
            and q.get("hours") == 2 and q.get("price_per_hour_micro_usd", 0) > 0
            and q.get("total_micro_usd") == 2 * q["price_per_hour_micro_usd"],
            "3. quote 4 x RTX 4090 for 2 h: 4 workers, total = per hour x 2",
            "rc=%s out=%r err=%r" % (rc, out[:300], err[:300]))
    rc, out, err = f.cli("quote", "--gpu", "RTX 4090", "--workers", "4")
    f.check(rc == 0 and "USD per hour" in out, "3. `muster quote` prints prices in USD",
            out + err)
    ws = f.workers() or {}
    f.check(f.search_4090() == before and not allocated(ws),
            "3. a quote reserves nothing (search counts unchanged, nothing allocated)",
            "before %s after %s" % (before, f.search_4090()))


def nothing_allocated(f, label):
    ws = f.workers()
    act = f.cli_json("cluster", "list", "--state", "active")
    f.check(ws is not None and not allocated(ws) and act is not None
            and not act.get("clusters"),
            "%s: nothing allocated, no active cluster" % label,
            "allocated %s, active %s" % (list(allocated(ws or {})), act))


def check_bad_input(f):
    with open(CATALOG) as fh:
        names = [m["name"] for m in json.load(fh)["models"]]
    rc, out, err = f.cli("cluster", "create", "--gpu", "RTX 4099", "--workers", "2", "--hours",
                         "1")
    f.check(rc == 1 and any(n in err for n in names),
            "4. unknown GPU model: exit 1, the reason suggests a catalog name",
            "rc=%s err=%r" % (rc, err))
    rc, out, err = f.cli("--json", "quote", "--gpu", "RTX 4099", "--workers", "2")
    e = (loads(out) or {}).get("error", {})
    f.check(rc == 1 and e.get("status") == "bad_request" and e.get("reason"),
            "4. unknown GPU model with --json: a JSON error", "rc=%s out=%r" % (rc, out))
    rc, out, err = f.cli("cluster", "create", "--gpu", "RTX 4090", "--workers", "2", "--hours",
                         "1", "--region", "atlantis")
    f.check(rc == 1 and "atlantis" in err, "4. unknown region: exit 1 with the broker's reason",
            "rc=%s err=%r" % (rc, err))
    base = ["cluster", "create", "--gpu", "RTX 4090", "--hours", "1"]
    for extra, what in [(["--workers", "0"], "--workers 0"),
                        (["--workers", "2", "--min-uptime", "1.5"], "--min-uptime 1.5"),
                        (["--workers", "2", "--hours", "0"], "--hours 0"),
                        (["--workers", "2", "--placement", "sideways"], "--placement sideways"),
                        (["--workers", "2", "--total-gpus", "2"], "--workers with --total-gpus"),
                        (["--workers", "2", "--max-price", "-1"], "--max-price -1"),
                        (["--workers", "2", "--bandwidth", "warp"], "--bandwidth warp")]:
        rc, out, err = f.cli(*(base + extra))
        f.check(rc == 2 and err.startswith("muster: ") and len(err.strip().splitlines()) == 1,
                "4. %s: exit 2 with a one-line error" % what, "rc=%s err=%r" % (rc, err))
    rc, out, err = f.cli("cluster", "create", "--workers", "2", "--hours", "1")
    f.check(rc == 2 and "--gpu" in err, "4. missing --gpu: exit 2", "rc=%s err=%r" % (rc, err))
    nothing_allocated(f, "4. after bad input")


def check_not_met(f):
    rc, out, err = f.cli("--json", "cluster", "create", "--gpu", "RTX 4090", "--workers", "50",
                         "--hours", "1")
    j = loads(out) or {}
    f.check(rc == 4 and j.get("explanation") and isinstance(j.get("alternatives"), list)
            and j["alternatives"] and all(a.get("flags") and a.get("text")
                                           for a in j["alternatives"])
            and (j.get("error") or {}).get("status") == "not_met",
            "5. 50 x RTX 4090: exit 4, JSON with explanation and alternatives",
            "rc=%s out=%r err=%r" % (rc, out[:500], err[:300]))
    if j.get("alternatives"):
        f.note("alternatives: %s" % "; ".join("%s (%s)" % (a["flags"], a["text"])
                                              for a in j["alternatives"]))
    rc, out, err = f.cli("quote", "--gpu", "RTX 4090", "--workers", "50")
    f.check(rc == 4 and "cannot be met now" in err and "nearest requests" in err
            and "  --" in err,
            "5. the same quote without --json: exit 4, explanation and flag alternatives",
            "rc=%s err=%r" % (rc, err))
    nothing_allocated(f, "5. after a request that cannot be met")


def check_parallel_create(f):
    procs = [f.cli_bg("--json", "cluster", "create", "--gpu", "RTX 4090", "--workers", "2",
                      "--placement", "spread", "--hours", "1", "--wait", "--wait-timeout",
                      "30", "--owner", "tester%d" % i) for i in range(5)]
    results = [f.finish_bg(p, 45) for p in procs]
    created, codes = [], []
    for rc, out, err in results:
        codes.append(rc)
        if rc == 0:
            c = loads(out)
            if c:
                created.append(c)
        elif rc != 4:
            f.note("create failed: rc=%s out=%r err=%r" % (rc, out[:300], err[:500]))
    f.note("5 parallel creates: exit statuses %s" % codes)
    f.check(all(rc in (0, 4) for rc in codes) and len(created) == codes.count(0),
            "6. 5 parallel `cluster create --wait`: each succeeds or exits 4", str(codes))
    f.require(len(created) >= 3, "6. at least 3 of them got a cluster", str(codes))
    f.check(all(c.get("state") == "ready" and len(member_ids(c)) == 2
                and all(m.get("acknowledged") for m in c["members"]) for c in created),
            "6. each created cluster is ready with 2 acknowledged members",
            json.dumps([(c.get("state"), member_ids(c)) for c in created]))
    seen = {}
    overlap = []
    for c in created:
        for w in member_ids(c):
            if w in seen:
                overlap.append((w, seen[w], c["id"]))
            seen[w] = c["id"]
    f.check(not overlap and len(seen) == 2 * len(created),
            "6. member sets are pairwise disjoint (no worker in two clusters)", str(overlap))
    ws = f.workers() or {}
    wrong = {w: (ws.get(w, {}).get("alloc"), ws.get(w, {}).get("cluster_id"), cid)
             for w, cid in seen.items()
             if ws.get(w, {}).get("alloc") != "allocated" or ws[w].get("cluster_id") != cid}
    f.check(ws and not wrong, "6. `workers --json`: members allocated to their cluster",
            str(wrong))
    extra = set(allocated(ws)) - set(seen)
    f.check(not extra, "6. no other worker is allocated", str(extra))
    s = f.search_4090()
    f.check(s is not None and s[0] == N_4090 - len(seen),
            "6. search shows %d fewer free 4090s" % len(seen), "search %s" % (s,))
    lst = f.cli_json("cluster", "list")
    ids = {c["id"] for c in (lst or {}).get("clusters", [])}
    f.check(lst is not None and all(c["id"] in ids for c in created),
            "6. `cluster list --json` lists the created clusters", json.dumps(lst)[:400])
    rc, out, _ = f.cli("cluster", "list", "--state", "active")
    f.check(rc == 0 and all(c["id"][:8] in out for c in created),
            "6. `cluster list --state active` table shows them", out)
    return created


def check_show_extend(f, c):
    cid = c["id"]
    j = f.cluster(cid[:8])
    f.check(j is not None and j.get("id") == cid and j.get("state") == "ready"
            and len(j.get("members", [])) == 2
            and all(m.get("acknowledged") and not m.get("lost") for m in j["members"]),
            "7. `cluster show PREFIX --json`: ready, members acknowledged",
            json.dumps(j)[:500])
    rc, out, err = f.cli("cluster", "show", cid)
    f.check(rc == 0 and "ready" in out and "members:" in out and "USD per hour" in out,
            "7. `cluster show` prints details", out + err)
    before = j or {}
    rc, out, err = f.cli("--json", "cluster", "extend", cid, "--hours", "2")
    e = loads(out) if rc == 0 else None
    f.check(e is not None and before.get("ends_at_ms")
            and e.get("ends_at_ms") == before["ends_at_ms"] + 2 * 3600 * 1000
            and e.get("hours") == before.get("hours", 0) + 2
            and e.get("total_micro_usd") == e.get("price_per_hour_micro_usd", 0) * e["hours"],
            "8. `cluster extend ID --hours 2` moves ends_at by 2 h and the total with it",
            "before %s after %s err=%r" % (before.get("ends_at_ms"), (e or {}).get("ends_at_ms"),
                                           err))
    rc, out, err = f.cli("cluster", "extend", cid, "--hours", "0")
    f.check(rc == 2, "8. `cluster extend --hours 0`: exit 2", "rc=%s" % rc)


def check_watch_release(f, c):
    cid = c["id"]
    before = f.search_4090()
    w = f.cli_bg("--json", "cluster", "watch", cid[:8], "--timeout", "5")
    time.sleep(1.0)  # the subscription must reach the broker before the release
    rc, out, err = f.cli("--json", "cluster", "release", cid, "--reason", "test done")
    r = loads(out) if rc == 0 else None
    f.check(r is not None and r.get("state") == "released",
            "9. `cluster release ID`: state released", "rc=%s out=%r err=%r" % (rc, out[:300],
                                                                                  err))
    t0 = time.monotonic()
    wrc, wout, werr = f.finish_bg(w, 10)
    took = time.monotonic() - t0
    lines = [loads(line) for line in wout.splitlines() if line.strip()]
    rel = [e for e in lines if e and e.get("topic") == "cluster.released"]
    f.note("watch exited %s %.2f s after the release; lines: %s" % (wrc, took, wout.strip()))
    f.check(wrc == 0 and rel and rel[-1].get("cluster_id") == cid and took < 4.5,
            "9. `cluster watch ID --json --timeout 5` sees the release and exits 0",
            "rc=%s out=%r err=%r" % (wrc, wout, werr))
    f.check(rel and rel[-1].get("seq", 0) > 0,
            "9. ... from the event itself (not rebuilt from a poll)", str(rel))
    ws = f.workers() or {}
    still = [m for m in member_ids(c) if ws.get(m, {}).get("alloc") != "free"
             or ws.get(m, {}).get("cluster_id")]
    f.check(ws and not still, "9. the released members are free again in `workers`", str(still))
    after = f.search_4090()
    f.check(before and after and after[0] == before[0] + 2,
            "9. and back in `search` (+2)", "before %s after %s" % (before, after))
    rc, out, err = f.cli("--json", "cluster", "release", cid)
    f.check(rc == 1, "9. releasing it again: exit 1", "rc=%s out=%r" % (rc, out))
    rc, out, err = f.cli("cluster", "watch", cid, "--timeout", "3")
    f.check(rc == 0 and "released" in out,
            "9. watching an ended cluster prints its end and exits 0", out + err)


def check_degraded(f, c):
    """A member SIGKILLed mid-cluster: its connection closes, it is offline
    after the reconnect grace, and a replacement takes its seat."""
    cid = c["id"]
    victim = member_ids(c)[0]
    name = f.by_id.get(victim)
    f.require(name is not None, "10. the member's agent is known")
    t0 = time.monotonic()
    f.agents[name].signal(signal.SIGKILL)
    f.agents[name].wait(2)
    seen = []

    def replaced():
        j = f.cluster(cid)
        st = j.get("state") if j else None
        if st and (not seen or seen[-1] != st):
            seen.append(st)
        if st == "ready" and victim not in member_ids(j) and len(member_ids(j)) == 2:
            return j
        return None

    j, _ = f.wait_for(replaced, WINDOW_S + 4.0, 0.05)
    waited = time.monotonic() - t0
    f.note("SIGKILL of a member -> cluster ready again with a replacement after %.2f s "
           "(heartbeat %d ms; liveness window %.1f s); states seen: %s"
           % (waited, HEARTBEAT_MS, WINDOW_S, " -> ".join(seen)))
    f.check(j is not None, "10. a ready cluster whose member is SIGKILLed gets a replacement "
            "and is ready again", "states: %s" % seen)
    if j:
        what = [h.get("what") for h in j.get("history", [])]
        f.check("lost" in what and "replaced" in what and what.index("lost") < what.index("replaced"),
                "10. its history says the member was lost, then replaced", str(what))
        ws = f.workers() or {}
        f.check(ws.get(victim, {}).get("alloc") == "free",
                "10. the lost worker no longer holds the seat", json.dumps(ws.get(victim)))


def check_final(f, created):
    ws = f.workers() or {}
    s = f.search_4090()
    free = free_4090(ws)
    f.check(s is not None and s[0] == len(free) == s[1],
            "11. search rows add up to the free 4090 workers (%d)" % len(free),
            "search %s" % (s,))
    for c in created:
        j = f.cluster(c["id"])
        if j and j.get("state") in ("provisioning", "ready", "degraded"):
            f.cli("cluster", "release", c["id"])
    act = f.cli_json("cluster", "list", "--state", "active")
    ws = f.workers() or {}
    f.check(act is not None and not act.get("clusters") and not allocated(ws),
            "11. after releasing every cluster nothing is allocated",
            "active %s allocated %s" % (act, list(allocated(ws))))


def check_no_sanitizer_reports(f):
    bad = [p.name for p in f.procs if SANITIZER_RE.search(p.text())]
    f.check(not bad and not f.cli_sanitizer_reports, "no sanitizer report from any process",
            "in: %s%s" % (bad, " and the CLI" if f.cli_sanitizer_reports else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", required=True, help="build directory with musterd, "
                    "muster-agent and muster")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)
    for b in ("musterd", "muster-agent", "muster"):
        if not os.access(os.path.join(bindir, b), os.X_OK):
            print("not ok - %s not found in %s" % (b, bindir))
            print("0 passed, 1 failed")
            return 1

    def on_alarm(sig, frame):
        raise Watchdog("the test ran over %d s" % WATCHDOG_S)

    def on_term(sig, frame):
        raise SystemExit("killed by signal %d" % sig)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.alarm(WATCHDOG_S)

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="muster-clusters-") as tmp:
        f = Fleet(bindir, tmp)
        try:
            check_fleet(f)
            check_search(f)
            check_quote(f)
            check_bad_input(f)
            check_not_met(f)
            created = check_parallel_create(f)
            check_show_extend(f, created[0])
            check_watch_release(f, created[0])
            check_degraded(f, created[1])
            check_final(f, created)
            check_no_sanitizer_reports(f)
        except Fatal as e:
            f.note("stopping early: %s" % e)
        except Watchdog as e:
            f.check(False, "the run finishes in time", str(e))
        except SystemExit as e:
            f.check(False, "the run was not interrupted", str(e))
        except Exception as e:  # a bug in the test itself still fails it cleanly
            import traceback
            traceback.print_exc()
            f.check(False, "the test ran without an internal error", repr(e))
        finally:
            signal.alarm(0)
            f.cleanup()
            if f.failed:
                try:
                    f.dump_logs()
                except Exception as e:  # never lose the summary line
                    print("# could not print the logs: %r" % e)
    print("# run took %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (f.passed, f.failed))
    return 0 if f.failed == 0 and f.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
