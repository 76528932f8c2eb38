#!/usr/bin/env python3
"""Keeping clusters whole: proof-of-work verification, spoofers caught and
rerouted around, a SIGKILLed member replaced.

A real musterd (default heartbeat interval, 1 s) and 12 real agents on
127.0.0.1, all claiming one H100 each through the simulated proof-of-work
backend. Ten are honest. Two are spoofers that answer their first challenge
at full speed and then at half the claimed throughput (a GPU swapped out
after it was verified); they ask less, so a cluster of four takes both.

  1. every agent passes its first check and is hireable;
  2. a 4-worker cluster is created with both spoofers in it;
  3. the light checks of hired workers catch them: both end failed, with
     "too slow" in `workers show`, and the cluster is rerouted to honest
     replacements and ready again;
  4. an honest member is SIGKILLed: its closed connection makes it suspect
     at once, offline after the reconnect grace, and a replacement makes
     the cluster ready; the detection and kill-to-ready times are printed;
     with no free worker left, another killed member's seat stays vacant
     until `muster cluster shrink` gives it up;
  5. after a broker restart on the same store the verdicts are still there
     (spoofers failed, the others passed), and `musterd --dump` shows them
     with the workers the cluster lost;
  6. no process printed a sanitizer report.

Run: python3 test_verify.py --bindir BUILD_DIR
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Proc, free_port

HONEST = ["hon%02d" % i for i in range(10)]
SPOOFERS = ["spoof0", "spoof1"]
RUN_LIMIT_S = 150


class Run:
    def __init__(self, bindir, tmp):
        self.bindir = bindir
        self.tmp = tmp
        self.procs = []
        self.agents = {}
        self.passed = self.failed = 0
        self.ports = [free_port(), free_port(), free_port()]
        self.broker = None

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("ok - %s" % what, flush=True)
        else:
            self.failed += 1
            print("not ok - %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return ok

    def note(self, text):
        print("# " + text, flush=True)

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def start_broker(self, name):
        argv = [self.bin("musterd"),
                "--agent-endpoint", "tcp://127.0.0.1:%d" % self.ports[0],
                "--client-endpoint", "tcp://127.0.0.1:%d" % self.ports[1],
                "--event-endpoint", "tcp://127.0.0.1:%d" % self.ports[2],
                "--state-dir", os.path.join(self.tmp, "broker"),
                "--durability", "process",
                # simulated GPUs: a small proof of work, padded to the claimed
                # model's time; light checks of hired workers every second
                "--verify-scale", "2000", "--verify-scratch-kib", "1", "--verify-target-ms", "300",
                "--verify-light-ms", "1000", "--verify-recheck-ms", "500"]
        p = Proc(name, argv, os.path.join(self.tmp, name + ".log"))
        self.procs.append(p)
        self.broker = p
        return p

    def start_agent(self, name, extra):
        argv = [self.bin("muster-agent"),
                "--broker", "tcp://127.0.0.1:%d" % self.ports[0],
                "--state-dir", os.path.join(self.tmp, "agent-" + name),
                "--hostname", name, "--simulate-gpu", "H100", "--bandwidth", "1000/800"] + extra
        p = Proc(name, argv, os.path.join(self.tmp, name + ".log"))
        self.procs.append(p)
        self.agents[name] = p
        return p

    def cli(self, *args, timeout=20):
        r = subprocess.run([self.bin("muster"), "--broker",
                            "tcp://127.0.0.1:%d" % self.ports[1], "--timeout", "3000"] +
                           list(args), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def cli_json(self, *args):
        rc, out, _ = self.cli("--json", *args)
        try:
            return json.loads(out) if rc == 0 else None
        except ValueError:
            return None

    def workers(self):
        j = self.cli_json("workers")
        if not j:
            return {}
        return {w["hostname"]: w for w in j.get("workers", [])}

    def wait_for(self, pred, limit_s, every=0.05):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            v = pred()
            if v:
                return v, time.monotonic() - t0
            time.sleep(every)
        return None, time.monotonic() - t0

    def stop_all(self):
        for p in self.procs:
            p.signal(signal.SIGKILL)
        for p in self.procs:
            p.wait(5)
            p.close()


def members(c):
    return [m["hostname"] for m in c.get("members", []) if m.get("worker_id")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", required=True)
    bindir = os.path.abspath(ap.parse_args().bindir)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="muster-verify-") as tmp:
        r = Run(bindir, tmp)
        signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError()))
        signal.alarm(RUN_LIMIT_S)
        try:
            body(r)
        except TimeoutError:
            r.check(False, "the run finished within %d s" % RUN_LIMIT_S)
        finally:
            signal.alarm(0)
            r.stop_all()
            bad = [p.name for p in r.procs if SANITIZER_RE.search(p.text())]
            r.check(not bad, "6. no sanitizer report from any process", str(bad))
            if r.failed:
                for p in r.procs:
                    if p.name.startswith("musterd") or p.name in SPOOFERS:
                        print("#### %s log" % p.name)
                        for line in p.text().splitlines()[-40:]:
                            print("#   " + line)
        print("# wall time %.1f s" % (time.monotonic() - t_start))
        print("%d passed, %d failed" % (r.passed, r.failed))
        return 0 if r.failed == 0 and r.passed > 0 else 1


def body(r):
    r.start_broker("musterd")
    up, _ = r.wait_for(lambda: r.cli("status")[0] == 0, 10)
    if not r.check(up, "musterd answers"):
        return
    # Seven honest workers and both spoofers in the US, three honest in DE:
    # the cluster is packed into the US, and replacements come from there.
    for i, name in enumerate(HONEST):
        r.start_agent(name, ["--country", "DE" if i < 3 else "US"])
    for name in SPOOFERS:
        # cheaper, so a cluster takes them first; honest for their first 8 checks
        # (onboarding, and the group checks of their neighbours on 127.0.0.1)
        r.start_agent(name, ["--country", "US", "--price", "0.50",
                             "--sim-speed-after", "8:0.5"])

    def all_passed():
        ws = r.workers()
        ok = len(ws) == 12 and all(w["state"] == "online" and w["verification"] == "passed"
                                   for w in ws.values())
        return ws if ok else None

    ws, waited = r.wait_for(all_passed, 30, 0.2)
    r.note("12 agents registered and verified after %.2f s" % waited)
    if not r.check(ws, "1. all 12 agents pass their first check",
                   json.dumps({h: (w["state"], w["verification"])
                               for h, w in r.workers().items()})):
        return
    h = ws["hon00"]["verification_history"][-1]
    r.note("an honest first check: %s" % h["text"])

    rc, out, err = r.cli("--json", "cluster", "create", "--gpu", "H100", "--workers", "4",
                         "--hours", "1", "--wait", "--wait-timeout", "20")
    c = json.loads(out) if rc == 0 else None
    c = c.get("cluster", c) if isinstance(c, dict) else None
    if not r.check(c and c.get("state") == "ready", "2. a 4 x H100 cluster is ready",
                   "rc=%s out=%r err=%r" % (rc, out, err)):
        return
    cid = c["id"]
    got = members(c)
    if not r.check(all(s in got for s in SPOOFERS), "2. both spoofers are in it (cheapest)",
                   str(got)):
        return

    t0 = time.monotonic()

    def clean():
        j = r.cli_json("cluster", "show", cid)
        ws = r.workers()
        if (j and j.get("state") == "ready" and len(members(j)) == 4
                and not any(s in members(j) for s in SPOOFERS)
                and all(ws.get(s, {}).get("verification") == "failed" for s in SPOOFERS)):
            return j
        return None

    j, waited = r.wait_for(clean, 40, 0.1)
    r.note("spoofers caught and the cluster rerouted %.2f s after it was ready" %
           (time.monotonic() - t0))
    r.check(j, "3. both spoofers end failed and the cluster is ready with 4 honest members",
            json.dumps(r.cli_json("cluster", "show", cid)))
    if j:
        what = [x["what"] for x in j.get("history", [])]
        r.check(what.count("failed") == 2 and what.count("replaced") == 2,
                "3. its history: 2 members failed verification, 2 replaced", str(what))
    rc, out, _ = r.cli("workers", "show", r.workers()["spoof0"]["id"])
    r.check(rc == 0 and "verification: failed" in out and "too slow" in out
            and "light check" in out,
            "3. `workers show` of a spoofer lists its checks: light checks, too slow, failed",
            out)
    for line in out.splitlines():
        if "too slow" in line:
            r.note("spoofer check: " + line.strip())
            break
    log = "".join(p.text() for p in r.procs if p.name == "spoof0")
    r.check("verify.check" in log and "hint=" in log,
            "3. the spoofer's agent logs what to check (driver, PCIe link, power limit)")

    # 4. SIGKILL an honest member: detection and kill-to-ready
    j = r.cli_json("cluster", "show", cid)
    victim = members(j)[0]
    vid = r.workers()[victim]["id"]
    t_kill = time.monotonic()
    r.agents[victim].signal(signal.SIGKILL)
    detected = None
    ready = None
    while time.monotonic() - t_kill < 20 and ready is None:
        if detected is None:
            w = r.cli_json("workers", "show", vid)
            w = w.get("worker", w) if isinstance(w, dict) else None
            if w and w.get("state") in ("suspect", "offline"):
                detected = time.monotonic() - t_kill
        j = r.cli_json("cluster", "show", cid)
        if j and j.get("state") == "ready" and victim not in members(j) and len(members(j)) == 4:
            ready = time.monotonic() - t_kill
        time.sleep(0.02)
    r.note("SIGKILL of a member: detected (suspect) after %s s, cluster ready with a "
           "replacement after %s s; heartbeat interval 1.0 s, two intervals = 2.0 s"
           % ("%.2f" % detected if detected is not None else "-",
              "%.2f" % ready if ready is not None else "-"))
    r.check(detected is not None, "4. the killed member is noticed (suspect)")
    r.check(ready is not None, "4. a replacement takes its seat and the cluster is ready")

    # 4b. no worker left to take a seat: the cluster stays degraded until its
    # owner shrinks it
    j = r.cli_json("cluster", "show", cid)
    inside = members(j) if j else []
    for name, p in r.agents.items():
        if name not in inside and name not in SPOOFERS and p.alive():
            p.signal(signal.SIGTERM)  # goodbye: offline at once
    for name, p in r.agents.items():
        if name not in inside and name not in SPOOFERS:
            p.wait(5)
    price_before = j.get("price_per_hour_micro_usd", 0) if j else 0
    victim = inside[0] if inside else None
    if victim:
        r.agents[victim].signal(signal.SIGKILL)

    def degraded_vacant():
        x = r.cli_json("cluster", "show", cid)
        if x and x.get("state") == "degraded" and len(members(x)) == 3:
            return x
        return None

    x, _ = r.wait_for(degraded_vacant, 10, 0.1)
    r.check(x, "4b. with no free H100 left, the killed member's seat stays vacant (degraded)",
            json.dumps(r.cli_json("cluster", "show", cid)))
    time.sleep(1.2)  # a retry or two find nobody
    x = r.cli_json("cluster", "show", cid)
    r.check(x and x.get("state") == "degraded", "4b. ... and stays so while nobody can fill it")
    rc, out, err = r.cli("cluster", "shrink", cid)
    r.check(rc == 0 and "ready" in out and "3 members" in out,
            "4b. `muster cluster shrink` gives the seat up: ready with 3 members", out + err)
    x = r.cli_json("cluster", "show", cid)
    r.check(x and x.get("state") == "ready" and len(x.get("members", [])) == 3
            and 0 < x.get("price_per_hour_micro_usd", 0) < price_before,
            "4b. 3 seats, all served, and a lower price per hour",
            "%s -> %s" % (price_before, x.get("price_per_hour_micro_usd") if x else None))
    rc, out, err = r.cli("cluster", "shrink", cid)
    r.check(rc == 1 and "nothing to shrink" in err, "4b. shrinking a whole cluster: exit 1",
            "rc=%s err=%r" % (rc, err))

    # 5. verdicts survive a broker restart
    r.broker.signal(signal.SIGTERM)
    r.check(r.broker.wait(5) == 0, "5. musterd stops cleanly")
    r.start_broker("musterd-restarted")
    up, _ = r.wait_for(lambda: r.cli("status")[0] == 0, 10)
    ws = r.workers() if up else {}
    r.check(up and all(ws.get(s, {}).get("verification") == "failed" for s in SPOOFERS)
            and ws.get("hon01", {}).get("verification") == "passed",
            "5. after a restart the spoofers are still failed, honest workers passed",
            json.dumps({h: w.get("verification") for h, w in ws.items()}))

    # 5b. the store, exported: verdicts and the workers the cluster lost
    spoof_ids = {ws[s]["id"] for s in SPOOFERS if s in ws}
    r.broker.signal(signal.SIGTERM)
    r.broker.wait(5)
    d = subprocess.run([r.bin("musterd"), "--state-dir", os.path.join(r.tmp, "broker"), "--dump"],
                       capture_output=True, text=True, timeout=30)
    try:
        dump = json.loads(d.stdout) if d.returncode == 0 else {}
    except ValueError:
        dump = {}
    dw = {w["id"]: w for w in dump.get("workers", [])}
    dc = [c for c in dump.get("clusters", []) if c.get("id") == cid]
    r.check(dump.get("schema_version", 0) >= 3 and spoof_ids
            and all(dw.get(i, {}).get("verification") == "failed" for i in spoof_ids)
            and dc and spoof_ids <= set(dc[0].get("lost_workers", []))
            and dc[0].get("seats_replaced", 0) >= 3,
            "5b. `musterd --dump` shows the verdicts and the workers the cluster lost",
            "rc=%s err=%r" % (d.returncode, d.stderr[-300:]))


if __name__ == "__main__":
    sys.exit(main())
