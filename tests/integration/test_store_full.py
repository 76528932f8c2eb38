#!/usr/bin/env python3
"""A full disk fails requests cleanly: the broker answers with an error,
keeps nothing it could not save, and goes on serving.

A real musterd whose store is capped small (store_max_bytes in its config:
the same failure as a full disk), real agents, and cluster creates through
the CLI until the store refuses to grow. Then:

  - the refused create got an error naming the failure (exit 1), not a
    cluster id;
  - the broker still answers, and lists exactly the clusters whose creation
    was acknowledged (none half-made), with no worker allocated to a
    cluster that does not exist;
  - after a restart on the same store, the same is true.

Run: python3 test_store_full.py --bindir BUILD_DIR
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import free_port


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", required=True)
    a = ap.parse_args()
    bindir = os.path.abspath(a.bindir)
    passed = failed = 0
    procs = []

    def check(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("ok - %s" % what, flush=True)
        else:
            failed += 1
            print("not ok - %s %s" % (what, detail), flush=True)
        return ok

    with tempfile.TemporaryDirectory(prefix="muster-full-") as tmp:
        ports = [free_port(), free_port(), free_port()]
        cfg = os.path.join(tmp, "musterd.json")
        with open(cfg, "w") as f:
            json.dump({"state_dir": os.path.join(tmp, "state"), "store_max_bytes": 160000,
                       "durability": "process", "heartbeat_interval_ms": 200,
                       # the store's size is under test; verification has its own
                       "verify": False}, f)

        def spawn(name, argv):
            log = open(os.path.join(tmp, name + ".log"), "ab")
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            procs.append(p)
            return p

        def cli(*args):
            r = subprocess.run([os.path.join(bindir, "muster"), "--broker",
                                "tcp://127.0.0.1:%d" % ports[1], "--timeout", "3000"] +
                               list(args), capture_output=True, text=True, timeout=20)
            return r.returncode, r.stdout, r.stderr

        def start_broker(name):
            p = spawn(name, [os.path.join(bindir, "musterd"), "--config", cfg,
                             "--agent-endpoint", "tcp://127.0.0.1:%d" % ports[0],
                             "--client-endpoint", "tcp://127.0.0.1:%d" % ports[1],
                             "--event-endpoint", "tcp://127.0.0.1:%d" % ports[2]])
            for _ in range(100):
                if cli("status", "--json")[0] == 0:
                    return p
                time.sleep(0.1)
            return None

        def consistent(tag, acked):
            rc, out, err = cli("cluster", "list", "--limit", "10000", "--json")
            if not check(rc == 0, "%s: the broker answers" % tag, err):
                return
            ids = {c["id"] for c in json.loads(out)["clusters"]}
            check(ids == set(acked), "%s: exactly the acknowledged clusters exist" % tag,
                  "listed %d, acknowledged %d" % (len(ids), len(acked)))
            rc, out, _ = cli("workers", "--json")
            dangling = [w["hostname"] for w in json.loads(out)["workers"]
                        if w.get("alloc") == "allocated" and w.get("cluster_id") not in ids]
            check(not dangling, "%s: no worker allocated to a cluster that does not exist" % tag,
                  str(dangling))

        try:
            broker = start_broker("musterd")
            if not check(broker is not None, "musterd starts with a capped store"):
                raise SystemExit(1)
            for i in range(30):
                spawn("agent-%d" % i, [os.path.join(bindir, "muster-agent"),
                                       "--broker", "tcp://127.0.0.1:%d" % ports[0],
                                       "--state-dir", os.path.join(tmp, "agent-%d" % i),
                                       "--hostname", "full-%d" % i, "--country", "DE",
                                       "--simulate-gpu", "T4", "--bandwidth", "500/400"])
            time.sleep(2)
            acked, refused = [], None
            for i in range(2000):
                rc, out, err = cli("cluster", "create", "--gpu", "T4", "--workers", "1",
                                   "--hours", "1", "--owner", "filler-" + "x" * 40, "--json")
                if rc == 0:
                    cid = json.loads(out)["id"]
                    acked.append(cid)
                    # release it at once, so workers stay free: only the store grows
                    rc2, _, err2 = cli("cluster", "release", cid, "--reason", "y" * 60)
                    if rc2 != 0:
                        refused = (rc2, err2)
                        break
                else:
                    refused = (rc, err)
                    break
            print("# %d clusters acknowledged before the store refused to grow" % len(acked))
            check(refused is not None, "the capped store eventually refuses a change")
            if refused:
                check(refused[0] == 1 and "could not save" in refused[1],
                      "the refused request got an error naming the failure", str(refused))
            check(len(acked) > 0, "changes were acknowledged before that")
            consistent("after the failure", acked)
            rc, out, _ = cli("status", "--json")
            check(rc == 0 and json.loads(out)["workers_total"] == 30,
                  "the fleet is still known after the core was rebuilt from the store")
            broker.send_signal(signal.SIGKILL)
            broker.wait()
            broker = start_broker("musterd-restarted")
            check(broker is not None, "musterd restarts on the full store")
            if broker:
                consistent("after a restart", acked)
        finally:
            for p in procs:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
            for p in procs:
                p.wait()
            if failed:
                for name in ("musterd", "musterd-restarted"):
                    path = os.path.join(tmp, name + ".log")
                    if os.path.exists(path):
                        with open(path, errors="replace") as f:
                            print("#### %s\n%s" % (name, "".join(f.readlines()[-12:])))
        print("%d passed, %d failed" % (passed, failed))
        return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
