#!/usr/bin/env python3
"""Crash test: nothing acknowledged is ever lost.

A real musterd and real agents on 127.0.0.1; several clients create and
release clusters through the `muster` CLI without pause; musterd is killed
with SIGKILL at seeded random instants (20 times by default) and started
again on the same state directory. After every kill:

  - `musterd --check` verifies the store and the restored core's
    invariants (before the broker is started again);
  - every cluster whose creation was acknowledged (the CLI exited 0 with its
    id) is present, and every release that was acknowledged left its
    cluster released (an acknowledged release is never undone);
  - no worker is a member of two active clusters.

A request that got no reply (the broker died first) may or may not have
been applied: both are correct, and neither is counted as acknowledged.
The test prints the counts it checked and ends with "N passed, M failed".

Run: python3 test_crash.py --bindir BUILD_DIR [--kills 20] [--seed 7]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import free_port

HEARTBEAT_MS = 200
AGENTS = [("DE", "RTX 4090:1"), ("FR", "RTX 4090:1"), ("NL", "RTX 4090:2"),
          ("US", "RTX 4090:1"), ("US", "RTX 4090:1"), ("CA", "RTX 4090:2"),
          ("JP", "RTX 4090:1"), ("DE", "RTX 4090:1"), ("PL", "RTX 4090:1"),
          ("BR", "RTX 4090:1"), ("US", "RTX 4090:2"), ("FR", "RTX 4090:1")]


class Run:
    def __init__(self, bindir, tmp, seed):
        self.bindir = bindir
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.procs = []
        self.broker = None
        self.ports = [free_port(), free_port(), free_port()]
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.created = {}       # id -> True once its creation was acknowledged
        self.released = set()   # ids whose release was acknowledged
        self.stop = threading.Event()
        self.requests = 0

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("not ok - %s %s" % (what, detail), flush=True)
        return ok

    def spawn(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def cli(self, *args, timeout_ms=1000):
        argv = [self.bin("muster"), "--broker", "tcp://127.0.0.1:%d" % self.ports[1],
                "--timeout", str(timeout_ms)] + list(args)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                               stdin=subprocess.DEVNULL)
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired:
            return -1, "", "timeout"

    def state_dir(self):
        return os.path.join(self.tmp, "broker-state")

    def start_broker(self, n):
        argv = [self.bin("musterd"),
                "--agent-endpoint", "tcp://127.0.0.1:%d" % self.ports[0],
                "--client-endpoint", "tcp://127.0.0.1:%d" % self.ports[1],
                "--event-endpoint", "tcp://127.0.0.1:%d" % self.ports[2],
                "--heartbeat-ms", str(HEARTBEAT_MS), "--state-dir", self.state_dir(),
                "--restore-grace-ms", "2000",
                # durability is under test here; verification has its own test
                "--no-verify"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.broker = self.spawn("musterd-%02d" % n, argv)
            for _ in range(100):
                if self.broker.poll() is not None:
                    break  # could not bind yet: the old sockets linger
                rc, _, _ = self.cli("status", "--json", timeout_ms=300)
                if rc == 0:
                    return True
                time.sleep(0.05)
            if self.broker.poll() is None:
                self.broker.kill()
            self.broker.wait()
            time.sleep(0.2)
        return False

    def start_agents(self):
        for i, (country, gpu) in enumerate(AGENTS):
            self.spawn("agent-%02d" % i, [
                self.bin("muster-agent"), "--broker", "tcp://127.0.0.1:%d" % self.ports[0],
                "--state-dir", os.path.join(self.tmp, "agent-%02d" % i),
                "--hostname", "crash-%02d" % i, "--country", country,
                "--simulate-gpu", gpu, "--bandwidth", "500/400",
                "--reconnect-min-ms", "100", "--reconnect-max-ms", "400"])

    def client(self, n):
        rng = random.Random(1000 + n)
        while not self.stop.is_set():
            with self.lock:
                mine = [c for c in self.created if c not in self.released]
            if mine and rng.random() < 0.45:
                cid = rng.choice(mine)
                rc, out, _ = self.cli("cluster", "release", cid, "--json")
                if rc == 0:
                    with self.lock:
                        self.released.add(cid)
            else:
                rc, out, _ = self.cli("cluster", "create", "--gpu", "RTX 4090",
                                      "--workers", str(rng.choice([1, 1, 2])),
                                      "--placement", "spread", "--hours", "1",
                                      "--owner", "crash-%d" % n, "--json")
                if rc == 0:
                    try:
                        cid = json.loads(out)["id"]
                        with self.lock:
                            self.created[cid] = True
                    except (ValueError, KeyError):
                        self.check(False, "create printed its cluster", out[:200])
            with self.lock:
                self.requests += 1
            time.sleep(rng.random() * 0.02)

    def verify(self, kill):
        """After a restart: every acknowledged change is there."""
        # What was acknowledged so far, taken before asking: the clients go on
        # working, and what they get acknowledged after this may not be in
        # the list yet.
        with self.lock:
            created = list(self.created)
            released = set(self.released)
        rc, out, err = self.cli("cluster", "list", "--limit", "10000", "--json",
                                timeout_ms=3000)
        if not self.check(rc == 0, "kill %d: cluster list answers" % kill, err):
            return
        clusters = {c["id"]: c for c in json.loads(out)["clusters"]}
        missing = [c for c in created if c not in clusters]
        self.check(not missing, "kill %d: every acknowledged cluster is there" % kill,
                   "missing %s" % missing[:3])
        undone = [c for c in released if c in clusters and clusters[c]["state"] != "released"]
        self.check(not undone, "kill %d: every acknowledged release stands" % kill,
                   str([(c, clusters[c]["state"]) for c in undone[:3]]))
        seen = {}
        twice = []
        for c in clusters.values():
            if c["state"] not in ("provisioning", "ready", "degraded"):
                continue
            for m in c.get("members", []):
                w = m.get("worker_id")
                if w:
                    if w in seen:
                        twice.append(w)
                    seen[w] = c["id"]
        self.check(not twice, "kill %d: no worker in two active clusters" % kill, str(twice[:3]))
        return len(created), len(released)

    def cleanup(self):
        self.stop.set()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class _Kept:
    """A work directory that stays (for --keep)."""
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, store)")
    a = ap.parse_args()
    started = time.monotonic()
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    with (tempfile.TemporaryDirectory(prefix="muster-crash-") if not a.keep
          else _Kept(a.keep)) as tmp:
        run = Run(os.path.abspath(a.bindir), tmp, a.seed)
        try:
            if not run.check(run.start_broker(0), "musterd starts"):
                raise SystemExit(1)
            run.start_agents()
            time.sleep(1.5)
            clients = [threading.Thread(target=run.client, args=(i,), daemon=True)
                       for i in range(a.clients)]
            for t in clients:
                t.start()
            for kill in range(1, a.kills + 1):
                time.sleep(0.2 + run.rng.random() * 0.8)
                run.broker.send_signal(signal.SIGKILL)
                run.broker.wait()
                r = subprocess.run([run.bin("musterd"), "--state-dir", run.state_dir(),
                                    "--check"], capture_output=True, text=True, timeout=60)
                run.check(r.returncode == 0, "kill %d: musterd --check passes" % kill,
                          (r.stdout + r.stderr).strip()[:300])
                if not run.check(run.start_broker(kill), "kill %d: musterd restarts" % kill):
                    break
                counts = run.verify(kill)
                if counts:
                    print("ok - kill %d: %d acknowledged creates, %d acknowledged releases "
                          "all present" % (kill, counts[0], counts[1]), flush=True)
            run.stop.set()
            for t in clients:
                t.join(timeout=15)
            counts = run.verify(a.kills + 1) or (0, 0)
            print("# %d kills, %d requests sent, %d creates and %d releases acknowledged "
                  "and checked after every kill, %.1f s" %
                  (a.kills, run.requests, counts[0], counts[1], time.monotonic() - started))
            run.check(counts[0] >= a.kills, "the load really ran (creates acknowledged)",
                      str(counts))
        finally:
            run.cleanup()
            if run.failed:
                for name in sorted(os.listdir(tmp)):
                    if name.startswith("musterd") and name.endswith(".log"):
                        with open(os.path.join(tmp, name), errors="replace") as f:
                            tail = f.readlines()[-15:]
                        print("#### %s\n%s" % (name, "".join(tail)))
        print("%d passed, %d failed" % (run.passed, run.failed))
        return 0 if run.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
