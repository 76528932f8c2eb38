#!/usr/bin/env python3
"""Integration test: a real musterd, three real muster-agents and the muster
CLI on 127.0.0.1.

    python3 test_fleet.py --bindir BUILD_DIR

Covers registration and the attributes the broker derives (catalog model,
region, tier), worker ids kept across agent restarts, liveness (SIGKILL ->
offline), goodbye (SIGTERM -> offline at once), agents re-registering by
themselves after a broker restart, the status counters and the CLI's exit
codes. Prints one "ok - ..." / "not ok - ..." line per check and a final
"N passed, M failed"; exits 0 only when every check passed.

Every wait has a deadline, ports are picked free on 127.0.0.1, every process
started is killed on the way out (children also die with this process, via
PR_SET_PDEATHSIG), and the temporary directory is removed. Standard library
only.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Fatal, Proc, Watchdog, free_port, set_pdeathsig

HEARTBEAT_MS = 200
LIVENESS = 3
WINDOW_S = HEARTBEAT_MS * LIVENESS / 1000.0  # silence before offline
WATCHDOG_S = 100  # the whole run, whatever happens (ctest gives 120)

AGENTS = {
    # name: (flags, expected attributes)
    "A": (["--simulate-gpu", "RTX 4090:2", "--country", "DE", "--bandwidth", "500/400",
           "--hostname", "alpha"],
          {"hostname": "alpha", "gpu_model": "RTX 4090", "gpu_count": 2, "country": "DE",
           "region": "europe", "tier": "medium", "simulated": True,
           "bandwidth_down_mbps": 500, "bandwidth_up_mbps": 400}),
    "B": (["--simulate-gpu", "H100:8", "--country", "US", "--bandwidth", "2000/1500",
           "--hostname", "bravo"],
          {"hostname": "bravo", "gpu_model": "H100 SXM", "gpu_count": 8, "country": "US",
           "region": "north-america", "tier": "ultra", "simulated": True,
           "bandwidth_down_mbps": 2000, "bandwidth_up_mbps": 1500}),
    "C": (["--simulate-gpu", "4090", "--country", "JP", "--bandwidth", "50/50",
           "--hostname", "charlie"],
          {"hostname": "charlie", "gpu_model": "RTX 4090", "gpu_count": 1, "country": "JP",
           "region": "asia-east", "tier": "none", "simulated": True,
           "bandwidth_down_mbps": 50, "bandwidth_up_mbps": 50}),
}


class Fleet:
    def __init__(self, bindir, tmp):
        self.bindir = bindir
        self.tmp = tmp
        self.procs = []  # every Proc ever started, for cleanup and logs
        self.passed = 0
        self.failed = 0
        self.ports = None
        self.broker = None
        self.agents = {}
        self.ids = {}
        self.cli_sanitizer_reports = []

    # --- reporting -------------------------------------------------------
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

    # --- processes --------------------------------------------------------
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

    def cli(self, *args, timeout_ms=2000, broker=None):
        """Run the muster CLI: (exit status, stdout, stderr)."""
        argv = [self.bin("muster"), "--broker", broker or self.client_ep(),
                "--timeout", str(timeout_ms)] + list(args)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout_ms / 1000.0 + 10, preexec_fn=set_pdeathsig)
        except subprocess.TimeoutExpired:
            return None, "", "muster did not exit in time"
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if SANITIZER_RE.search(err):
            self.cli_sanitizer_reports.append("%s\n%s" % (" ".join(argv), err))
        return r.returncode, out, err

    def cli_json(self, *args, timeout_ms=2000):
        rc, out, err = self.cli("--json", *args, timeout_ms=timeout_ms)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def workers(self):
        """{id: worker} from `muster workers --json`, or None."""
        j = self.cli_json("workers")
        if j is None or not isinstance(j.get("workers"), list):
            return None
        return {w["id"]: w for w in j["workers"]}

    def status(self):
        return self.cli_json("status")

    def wait_for(self, pred, deadline_s, interval=0.05):
        """Poll pred() until it returns a true value or the deadline passes.
        Returns (value, seconds waited)."""
        t0 = time.monotonic()
        while True:
            v = pred()
            if v:
                return v, time.monotonic() - t0
            if time.monotonic() - t0 >= deadline_s:
                return None, time.monotonic() - t0
            time.sleep(interval)

    def start_broker(self, ports, name, attempts_same_ports=1):
        """Start musterd on ports and wait until it answers. Returns the Proc,
        or None when it could not bind (so the caller may pick other ports)."""
        for attempt in range(attempts_same_ports):
            self.ports = ports
            argv = [self.bin("musterd"),
                    "--agent-endpoint", "tcp://127.0.0.1:%d" % ports[0],
                    "--client-endpoint", "tcp://127.0.0.1:%d" % ports[1],
                    "--event-endpoint", "tcp://127.0.0.1:%d" % ports[2],
                    "--heartbeat-ms", str(HEARTBEAT_MS), "--liveness", str(LIVENESS),
                    # one store for every broker of this run, so a restarted
                    # broker finds what the first one saved
                    "--state-dir", os.path.join(self.tmp, "broker-state"),
                    "--durability", "process"]
            p = self.start("%s-%d" % (name, attempt), argv)

            def answers():
                if not p.alive():
                    return "died"
                rc, out, _ = self.cli("status", "--json", timeout_ms=500)
                if rc == 0:
                    try:
                        return json.loads(out)
                    except ValueError:
                        return None
                return None

            st, waited = self.wait_for(answers, 10.0, 0.1)
            if isinstance(st, dict):
                self.note("%s answered after %.2f s (pid %d)" % (name, waited, p.pid))
                return p, st
            rc = p.wait(0.5)
            if st == "died" and "cannot bind" in p.text():
                self.note("%s could not bind %s (attempt %d); retrying" % (name, ports, attempt))
                time.sleep(0.3)
                continue
            # Neither answered nor a bind failure: a real failure.
            p.signal(signal.SIGKILL)
            return p, {"_failed": "exit status %s" % rc}
        return None, None

    def start_agent(self, name):
        flags, _ = AGENTS[name]
        state = os.path.join(self.tmp, "state-" + name)
        argv = [self.bin("muster-agent"), "--broker", self.agent_ep(), "--state-dir", state,
                "--reconnect-min-ms", "100", "--reconnect-max-ms", "400"] + flags
        p = self.start("agent-%s-%d" % (name, len(self.procs)), argv)
        self.agents[name] = p
        return p

    def stored_id(self, name):
        try:
            with open(os.path.join(self.tmp, "state-" + name, "worker-id")) as f:
                return f.read().strip()
        except OSError:
            return None

    def cleanup(self):
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
            for line in p.text().splitlines():
                print("#   " + line)
        for r in self.cli_sanitizer_reports:
            print("#### sanitizer report from the CLI")
            for line in r.splitlines():
                print("#   " + line)
        sys.stdout.flush()


# --- the checks ------------------------------------------------------------------


def check_broker_starts(f):
    for _ in range(5):
        ports = [free_port(), free_port(), free_port()]
        if len(set(ports)) < 3:
            continue
        p, st = f.start_broker(ports, "musterd")
        if p is None:
            continue
        f.broker = p
        f.require(isinstance(st, dict) and "_failed" not in st,
                  "1. musterd starts and `muster status --json` answers",
                  str(st and st.get("_failed")))
        f.check(st.get("protocol_version") == 1 and st.get("workers_total") == 0
                and st.get("heartbeat_interval_ms") == HEARTBEAT_MS
                and st.get("liveness") == LIVENESS
                and st.get("client_endpoint") == f.client_ep()
                and st.get("agent_endpoint") == f.agent_ep(),
                "1b. fresh broker status: protocol 1, no workers, our pace and endpoints",
                json.dumps(st))
        return
    f.require(False, "1. musterd starts on free ports", "could not bind after 5 attempts")


def check_agents_register(f):
    for name in ("A", "B", "C"):
        f.start_agent(name)

    def three_online():
        ws = f.workers()
        if ws and len(ws) == 3 and all(w["state"] == "online" for w in ws.values()):
            return ws
        return None

    ws, waited = f.wait_for(three_online, 10.0, 0.1)
    f.note("3 agents online after %.2f s" % waited)
    f.require(ws is not None, "2. three agents start and register",
              "fleet: %s" % json.dumps(f.workers()))


def check_attributes(f):
    ws = f.workers()
    f.require(ws is not None and len(ws) == 3, "3. `muster workers --json` lists exactly 3 workers",
              json.dumps(ws))
    by_host = {w["hostname"]: w for w in ws.values()}
    for name, (_, want) in AGENTS.items():
        sid = f.stored_id(name)
        w = by_host.get(want["hostname"])
        if not f.check(w is not None, "3. agent %s is listed as %s" % (name, want["hostname"])):
            continue
        bad = {k: (w.get(k), v) for k, v in want.items() if w.get(k) != v}
        f.check(not bad, "3. agent %s attributes (model, count, country, region, tier, ...)" % name,
                "got/want: %s" % bad)
        f.check(w["state"] == "online", "3. agent %s is online" % name, w["state"])
        f.check(sid is not None and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                                 r"[0-9a-f]{4}-[0-9a-f]{12}", sid or "")
                and w["id"] == sid,
                "3. agent %s worker id equals STATE_DIR/worker-id" % name,
                "listed %s, stored %r" % (w["id"], sid))
        f.check(len(w.get("devices", [])) == want["gpu_count"]
                and all(d["model"] == want["gpu_model"] for d in w.get("devices", [])),
                "3. agent %s device list matches gpu_count and model" % name)
        f.ids[name] = w["id"]
    f.require(len(f.ids) == 3 and len(set(f.ids.values())) == 3, "3. three distinct worker ids")


def check_cli(f):
    a = f.ids["A"]
    rc, out, err = f.cli("workers", "show", a[:8], "--json")
    try:
        w = json.loads(out) if rc == 0 else None
    except ValueError:
        w = None
    f.check(w is not None and w.get("id") == a and w.get("hostname") == "alpha"
            and w.get("gpu_count") == 2,
            "4. `muster workers show %s --json` returns agent A" % a[:8],
            "rc=%s out=%r err=%r" % (rc, out[:200], err[:200]))
    rc, out, err = f.cli("workers", "show", "0000zzzz")
    f.check(rc == 1 and err.strip() != "", "4. `workers show 0000zzzz` exits 1 with an error",
            "rc=%s stderr=%r" % (rc, err))
    rc, out, err = f.cli("workers", "show", a[:2])
    f.check(rc == 1 and err.strip() != "", "4. `workers show` with a 2-char prefix exits 1",
            "rc=%s stderr=%r" % (rc, err))
    rc, out, err = f.cli("workers", "show", "0000zzzz", "--json")
    try:
        e = json.loads(out).get("error", {}) if out else {}
    except ValueError:
        e = {}
    f.check(rc == 1 and e.get("status") in ("not_found", "bad_request") and e.get("reason"),
            "4. `workers show 0000zzzz --json` prints a JSON error", "rc=%s out=%r" % (rc, out))
    rc, out, err = f.cli("bogus")
    f.check(rc == 2 and err.strip() != "", "4. `muster bogus` exits 2", "rc=%s" % rc)
    unused = free_port()
    rc, out, err = f.cli("status", timeout_ms=300, broker="tcp://127.0.0.1:%d" % unused)
    f.check(rc == 3 and err.strip() != "", "4. unreachable broker: `muster status` exits 3",
            "rc=%s stderr=%r" % (rc, err))


def state_of(f, ws, name):
    w = ws.get(f.ids[name]) if ws else None
    return w["state"] if w else None


def check_sigkill_offline(f):
    a = f.agents["A"]
    a.signal(signal.SIGKILL)
    a.wait(2)
    t0 = time.monotonic()
    seen = []

    def a_offline():
        ws = f.workers()
        st = state_of(f, ws, "A")
        if st and (not seen or seen[-1] != st):
            seen.append(st)
        return ws if st == "offline" else None

    ws, waited = f.wait_for(a_offline, WINDOW_S + 4.4, 0.05)
    f.note("SIGKILL -> offline in %.3f s (liveness window %.1f s); states seen: %s"
           % (waited, WINDOW_S, " -> ".join(seen)))
    f.check(ws is not None, "5. SIGKILLed agent A goes offline within %.1f s" % (WINDOW_S + 4.4),
            "states seen: %s" % seen)
    ws = f.workers()
    f.check(ws is not None and state_of(f, ws, "B") == "online"
            and state_of(f, ws, "C") == "online", "5. agents B and C stay online",
            "B=%s C=%s" % (state_of(f, ws, "B"), state_of(f, ws, "C")))


def check_restart_agent(f):
    before = f.workers() or {}
    old = before.get(f.ids["A"], {})
    f.start_agent("A")

    def a_online():
        ws = f.workers()
        return ws if state_of(f, ws, "A") == "online" else None

    ws, waited = f.wait_for(a_online, 10.0, 0.1)
    f.note("restarted agent A online after %.2f s" % waited)
    f.check(ws is not None, "6. restarted agent A comes back online")
    ws = ws or f.workers() or {}
    f.check(f.stored_id("A") == f.ids["A"] and f.ids["A"] in ws,
            "6. agent A keeps the same id", "stored %s, was %s" % (f.stored_id("A"), f.ids["A"]))
    f.check(len(ws) == 3 and sorted(ws) == sorted(f.ids.values()),
            "6. still 3 workers, no duplicate", "ids: %s" % sorted(ws))
    new = ws.get(f.ids["A"], {})
    f.check(old.get("registered_at_ms") and new.get("registered_at_ms") == old["registered_at_ms"]
            and new.get("connected_at_ms", 0) > old.get("connected_at_ms", 0),
            "6. registered_at_ms kept, connected_at_ms advanced",
            "before %s/%s after %s/%s" % (old.get("registered_at_ms"), old.get("connected_at_ms"),
                                          new.get("registered_at_ms"), new.get("connected_at_ms")))


def check_sigterm_goodbye(f):
    b = f.agents["B"]
    t_kill = time.monotonic()
    b.signal(signal.SIGTERM)
    rc = b.wait(3.0)
    t_exit = time.monotonic()
    f.check(rc == 0, "7. SIGTERMed agent B exits 0 within 3 s",
            "exit status %s after %.2f s" % (rc, t_exit - t_kill))

    def b_offline():
        ws = f.workers()
        return ws if state_of(f, ws, "B") == "offline" else None

    ws, waited = f.wait_for(b_offline, 3.0, 0.02)
    f.note("agent B: SIGTERM -> exit %.3f s, exit -> seen offline %.3f s"
           % (t_exit - t_kill, waited))
    f.check(ws is not None and waited < 1.5, "7. agent B offline < 1.5 s after its exit",
            "waited %.3f s" % waited)
    log = f.broker.text()
    f.check(re.search(r"event=worker\.offline id=%s .*reason=\"goodbye" % re.escape(f.ids["B"]),
                      log) is not None,
            "7. the broker took B offline because of its goodbye (not the liveness timeout)")
    ws = f.workers()
    f.check(ws is not None and state_of(f, ws, "A") == "online"
            and state_of(f, ws, "C") == "online", "7. agents A and C still online")


def check_broker_restart(f):
    old = f.broker
    old.signal(signal.SIGTERM)
    rc = old.wait(3.0)
    f.check(rc == 0, "8. first musterd exits 0 on SIGTERM", "exit status %s" % rc)
    time.sleep(0.3)  # let the agents notice the silence for a moment
    p, st = f.start_broker(f.ports, "musterd-restarted", attempts_same_ports=5)
    f.require(p is not None and isinstance(st, dict) and "_failed" not in st,
              "8. a new musterd starts on the same ports", str(st))
    f.broker = p

    def back():
        ws = f.workers()
        if ws and state_of(f, ws, "A") == "online" and state_of(f, ws, "C") == "online":
            return ws
        return None

    ws, waited = f.wait_for(back, 10.0, 0.1)
    f.note("agents A and C re-registered %.2f s after the new broker answered" % waited)
    f.check(ws is not None, "8. agents A and C re-register by themselves within 10 s",
            "fleet: %s" % json.dumps(f.workers()))
    ws = ws or {}
    f.check(f.ids["A"] in ws and f.ids["C"] in ws and state_of(f, ws, "B") != "online",
            "8. same ids for A and C; B (stopped) is not online", "ids: %s" % sorted(ws))


def counters_mismatch(st, ws):
    """What differs between the status counters and the worker list."""
    online = [w for w in ws.values() if w["state"] == "online"]
    want = {
        "workers_total": len(ws),
        "workers_online": len(online),
        "workers_suspect": sum(1 for w in ws.values() if w["state"] == "suspect"),
        "workers_offline": sum(1 for w in ws.values() if w["state"] == "offline"),
        "gpus_online": sum(w["gpu_count"] for w in online),
    }
    return {k: (st.get(k), v) for k, v in want.items() if st.get(k) != v}


def check_counters(f, label):
    # Status and list are two calls: a worker may change state in between
    # (e.g. turn suspect for a moment on a loaded machine), so compare a
    # snapshot taken while nothing is suspect, retrying a few times. A real
    # counting error persists and still fails.
    st = ws = None
    bad = {"_": "no answer"}
    for _ in range(5):
        st, ws = f.status(), f.workers()
        if st is not None and ws is not None:
            bad = counters_mismatch(st, ws)
            if not bad and not any(w["state"] == "suspect" for w in ws.values()):
                break
        time.sleep(0.2)
    if not f.check(st is not None and ws is not None, "9. status and workers answer (%s)" % label):
        return
    f.check(not bad, "9. status counters match the worker list (%s)" % label,
            "status/list: %s" % bad)
    f.check(st.get("messages_received", 0) > 0 and st.get("messages_rejected", -1) >= 0
            and st.get("messages_dropped", -1) == 0,
            "9. message counters present, nothing dropped (%s)" % label, json.dumps(st))


def check_shutdown(f):
    p = f.broker
    epfile = os.path.join(f.tmp, "broker-state", "endpoints.json")
    try:
        with open(epfile) as fh:
            eps = json.load(fh)
    except (OSError, ValueError) as e:
        eps = {"_error": str(e)}
    f.check(eps.get("client_endpoint") == f.client_ep() and eps.get("pid") == p.pid,
            "10. endpoints.json names the bound endpoints and the pid", json.dumps(eps))
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait(3.0)
    f.check(rc == 0, "10. musterd exits 0 on SIGTERM within 3 s",
            "exit status %s after %.2f s" % (rc, time.monotonic() - t0))
    f.check(not os.path.exists(epfile), "10. a cleanly stopped musterd removes endpoints.json")
    for name in ("A", "C"):
        a = f.agents[name]
        a.signal(signal.SIGTERM)
        rc = a.wait(3.0)
        f.check(rc == 0, "10. agent %s exits 0 on SIGTERM (broker gone)" % name,
                "exit status %s" % rc)


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
    with tempfile.TemporaryDirectory(prefix="muster-fleet-") as tmp:
        f = Fleet(bindir, tmp)
        try:
            check_broker_starts(f)
            check_agents_register(f)
            check_attributes(f)
            check_counters(f, "3 workers online")
            check_cli(f)
            check_sigkill_offline(f)
            check_restart_agent(f)
            check_sigterm_goodbye(f)
            check_counters(f, "after goodbye")
            check_broker_restart(f)
            check_counters(f, "after broker restart")
            check_shutdown(f)
            check_no_sanitizer_reports(f)
        except Fatal as e:
            f.note("stopping early: %s" % e)
        except Watchdog as e:
            f.check(False, "the run finishes in time", str(e))
        except SystemExit as e:
            f.check(False, "the run was not interrupted", str(e))
        except Exception as e:  # a bug in the test itself still fails it cleanly
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
