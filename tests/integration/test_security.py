#!/usr/bin/env python3
"""Integration test: CURVE security and accounts. A real musterd started with
a key pair and an accounts file, 4 real muster-agents connecting with the
broker's public key (their own key pairs created at first start), and the
muster CLI with each account's key, all on 127.0.0.1.

    python3 test_security.py --bindir BUILD_DIR

Covers: `muster keygen` (a key pair file, never overwritten); two accounts,
one of which cannot see, extend, shrink, release or submit tasks to the
other's cluster (each a clear permission error), and does not see it in
its list; an admin that can; a client whose key is in no account refused,
and one without any key; a quota (max_gpus) exceeded: an error, nothing
allocated; an agent cannot register under another worker's id (the id is
bound to the first key); a broker restart keeps that binding; musterd
refuses a non-loopback endpoint without keys (before binding anything);
a reservation bob cannot see, extend, release or sub-allocate from;
events filtered per account (alice sees her cluster's, bob none, an admin
all); webhooks: alice's events are POSTed to a local receiver that first fails
(retried), then answers (delivered in order, each signed with HMAC-SHA256,
none of anyone else's), `status` shows the deliveries, and a receiver that
hangs does not slow the broker's answers.
Prints one "ok - ..." / "not ok - ..." line per check and "N passed, M
failed"; exits 0 only when every check passed. Standard library only.
"""
import argparse
import hashlib
import hmac
import http.server
import json
import threading
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Fatal, Proc, Watchdog, free_port, set_pdeathsig

WATCHDOG_S = 150
N_AGENTS = 4
HOOK_SECRET = "a-webhook-secret-for-alice"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 200, 500, or hangs."""

    def __init__(self):
        self.mode = "fail"
        self.got = []       # (headers dict, body bytes) of 2xx answers
        self.attempts = 0
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                recv.attempts += 1
                if recv.mode == "hang":
                    time.sleep(8)
                    return
                if recv.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                recv.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def signature_ok(headers, body):
    mac = hmac.new(HOOK_SECRET.encode(), headers.get("x-muster-timestamp", "").encode() + b"." +
                   body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + mac, headers.get("x-muster-signature", ""))


def loads(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


class Run:
    def __init__(self, bindir, tmp):
        self.bindir = bindir
        self.tmp = tmp
        self.procs = []
        self.passed = self.failed = 0
        self.ports = [free_port(), free_port(), free_port()]
        self.broker = None
        self.agents = {}
        self.cli_reports = []

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

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start(self, name, argv):
        p = Proc(name, argv, self.path("%s.log" % name))
        self.procs.append(p)
        return p

    def run(self, argv, timeout=20):
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout, preexec_fn=set_pdeathsig)
        except subprocess.TimeoutExpired:
            return None, "", "did not exit in time"
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if SANITIZER_RE.search(err):
            self.cli_reports.append(" ".join(argv) + "\n" + err)
        return r.returncode, out, err

    def cli(self, who, *args, timeout_ms=3000):
        """The CLI as account `who` (a key file name), or with no key (None)."""
        argv = [self.bin("muster"), "--broker", "tcp://127.0.0.1:%d" % self.ports[1],
                "--timeout", str(timeout_ms)]
        if who:
            argv += ["--key", self.path(who + ".key"), "--broker-key", self.broker_pub]
        return self.run(argv + list(args), timeout=timeout_ms / 1000.0 + 15)

    def keygen(self, name):
        rc, out, err = self.run([self.bin("muster"), "keygen", "--out", self.path(name + ".key"),
                                 "--json"])
        j = loads(out) if rc == 0 else None
        self.require(j is not None and len(j.get("public_key", "")) == 40,
                     "muster keygen writes %s's key pair" % name, out + err)
        return j["public_key"]

    def start_broker(self):
        self.broker = self.start("musterd", [
            self.bin("musterd"),
            "--agent-endpoint", "tcp://127.0.0.1:%d" % self.ports[0],
            "--client-endpoint", "tcp://127.0.0.1:%d" % self.ports[1],
            "--event-endpoint", "tcp://127.0.0.1:%d" % self.ports[2],
            "--state-dir", self.path("state"), "--key", self.path("broker.key"),
            "--accounts", self.path("accounts.json"), "--no-verify", "--webhook-allow-private",
            "--heartbeat-ms", "200", "--reconnect-grace-ms", "300", "--log-level", "info"])
        deadline = time.time() + 15
        while time.time() < deadline:
            rc, _, _ = self.cli("alice", "status", "--json", timeout_ms=500)
            if rc == 0:
                return
            if not self.broker.alive():
                break
            time.sleep(0.1)
        raise Fatal("musterd did not start:\n" + self.broker.text()[-3000:])

    def start_agent(self, name, state=None):
        self.agents[name] = self.start(name, [
            self.bin("muster-agent"), "--broker", "tcp://127.0.0.1:%d" % self.ports[0],
            "--broker-key", self.broker_pub, "--state-dir", state or self.path(name),
            "--hostname", name, "--country", "DE", "--simulate-gpu", "RTX 4090",
            "--bandwidth", "500/400", "--log-level", "info"])

    def workers(self, who="alice"):
        rc, out, _ = self.cli(who, "workers", "--json")
        j = loads(out) if rc == 0 else None
        return j.get("workers", []) if j else []

    def wait_online(self, n):
        deadline = time.time() + 20
        while time.time() < deadline:
            if len([w for w in self.workers() if w.get("state") == "online"]) >= n:
                return True
            time.sleep(0.2)
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="muster-security-")
    r = Run(args.bindir, tmp)

    def on_alarm(signum, frame):
        raise Watchdog()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(WATCHDOG_S)
    ok = False
    try:
        # Keys and accounts.
        r.broker_pub = r.keygen("broker")
        keys = {name: r.keygen(name) for name in ("alice", "bob", "root", "mallory")}
        rc, out, err = r.run([r.bin("muster"), "keygen", "--out", r.path("alice.key")])
        r.check(rc != 0 and "exists" in err, "keygen never overwrites a key pair", err)
        with open(r.path("alice.key")) as f:
            r.check(json.load(f)["public_key"] == keys["alice"], "the key file is intact")
        hook = Receiver()
        r.receiver = hook
        accounts = [{"name": "alice", "public_key": keys["alice"], "role": "user", "max_gpus": 3,
                     "webhook": {"url": "http://127.0.0.1:%d/hook" % hook.port,
                                 "secret": HOOK_SECRET}},
                    {"name": "bob", "public_key": keys["bob"], "role": "user"},
                    {"name": "root", "public_key": keys["root"], "role": "admin"}]
        with open(r.path("accounts.json"), "w") as f:
            json.dump(accounts, f)

        # Without keys, only loopback: refused before anything is bound.
        rc, out, err = r.run([r.bin("musterd"), "--agent-endpoint", "tcp://0.0.0.0:%d" %
                              free_port(), "--state-dir", r.path("nokey")])
        r.check(rc == 2 and "CURVE" in err, "musterd refuses a public endpoint without keys", err)

        r.start_broker()
        for i in range(N_AGENTS):
            r.start_agent("w%d" % i)
        r.require(r.wait_online(N_AGENTS), "%d agents online over CURVE" % N_AGENTS)

        rc, out, err = r.cli("alice", "cluster", "create", "--gpu", "RTX 4090", "--workers", "2",
                             "--hours", "1", "--wait", "--json", timeout_ms=15000)
        c = loads(out) if rc == 0 else None
        r.require(c is not None and c.get("state") == "ready", "alice's cluster is ready",
                  out + err)
        cid = c["id"]
        r.check(c.get("owner") == "alice", "the owner is the account, not what the client says",
                str(c.get("owner")))

        # Bob can touch none of it.
        for what, cmd in [("see", ["cluster", "show", cid]),
                          ("extend", ["cluster", "extend", cid, "--hours", "1"]),
                          ("shrink", ["cluster", "shrink", cid]),
                          ("release", ["cluster", "release", cid]),
                          ("submit tasks to", ["task", "submit", "--cluster", cid, "--", "true"]),
                          ("list the tasks of", ["task", "list", "--cluster", cid])]:
            rc, out, err = r.cli("bob", *cmd)
            r.check(rc == 1 and "another account" in err,
                    "bob cannot %s alice's cluster (permission error)" % what, "%s %s" % (rc, err))
        rc, out, err = r.cli("bob", "cluster", "list", "--json")
        j = loads(out) or {}
        r.check(rc == 0 and all(x["id"] != cid for x in j.get("clusters", [])),
                "bob's cluster list does not show alice's cluster")
        rc, out, err = r.cli("alice", "cluster", "list", "--json")
        j = loads(out) or {}
        r.check(rc == 0 and any(x["id"] == cid for x in j.get("clusters", [])),
                "alice's list shows it")
        rc, out, err = r.cli("root", "cluster", "show", cid, "--json")
        r.check(rc == 0 and (loads(out) or {}).get("id") == cid, "an admin sees it")
        rc, out, err = r.cli("alice", "task", "submit", "--cluster", cid, "--wait", "--", "true")
        r.check(rc == 0, "alice runs a task on her cluster", err)

        # Quota: alice holds 2 GPUs of at most 3.
        rc, out, err = r.cli("alice", "cluster", "create", "--gpu", "RTX 4090", "--workers", "2",
                             "--hours", "1")
        r.check(rc == 1 and "quota" in err, "a quota exceeded is refused", err)
        rc, out, err = r.cli("alice", "cluster", "list", "--json")
        r.check(len((loads(out) or {}).get("clusters", [])) == 1, "nothing was allocated")

        # Reservations are owned the same way.
        rc, out, err = r.cli("alice", "reserve", "create", "--gpu", "RTX 4090", "--workers", "1",
                             "--hours", "24", "--json")
        resv = loads(out) if rc == 0 else None
        r.require(resv is not None and resv.get("id"), "alice reserves a worker", out + err)
        rid = resv["id"]
        for what, cmd in [("see", ["reserve", "show", rid]),
                          ("extend", ["reserve", "extend", rid, "--hours", "1"]),
                          ("release", ["reserve", "release", rid]),
                          ("sub-allocate from", ["cluster", "create", "--from-reservation", rid,
                                                 "--gpu", "RTX 4090", "--workers", "1",
                                                 "--hours", "1"])]:
            rc, out, err = r.cli("bob", *cmd)
            r.check(rc == 1 and "another account" in err,
                    "bob cannot %s alice's reservation (permission error)" % what,
                    "%s %s" % (rc, err))
        rc, out, err = r.cli("bob", "reserve", "list", "--json")
        r.check(rc == 0 and all(x.get("id") != rid for x in
                                (loads(out) or {}).get("reservations", [])),
                "bob's reservation list does not show alice's", out[:200])
        rc, out, err = r.cli("alice", "reserve", "release", rid)
        r.check(rc == 0, "alice releases her reservation", err)

        # Events, filtered by account: alice sees her cluster's, bob does not.
        def events_bg(who):
            argv = [r.bin("muster"), "--broker", "tcp://127.0.0.1:%d" % r.ports[1],
                    "--key", r.path(who + ".key"), "--broker-key", r.broker_pub,
                    "events", "--topic", "cluster.", "--for", "4", "--json"]
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, preexec_fn=set_pdeathsig)
        watchers = {who: events_bg(who) for who in ("alice", "bob", "root")}
        time.sleep(1.0)
        rc, out, err = r.cli("alice", "cluster", "extend", cid, "--hours", "1")
        r.check(rc == 0, "alice extends her cluster", err)
        seen = {}
        for who, p in watchers.items():
            o, e = p.communicate(timeout=20)
            seen[who] = [loads(line) or {} for line in o.decode(errors="replace").splitlines()]
        r.check(any(x.get("topic") == "cluster.extended" and x.get("cluster_id") == cid
                    for x in seen["alice"]), "alice's event stream shows her cluster's change",
                str(seen["alice"])[:300])
        r.check(not any(x.get("cluster_id") == cid for x in seen["bob"]),
                "bob's event stream shows nothing of alice's cluster", str(seen["bob"])[:300])
        r.check(any(x.get("cluster_id") == cid for x in seen["root"]),
                "an admin's stream shows it")

        # Webhooks: the receiver failed every attempt so far; now it answers.
        r.check(hook.attempts > 0 and not hook.got, "alice's events were posted to her webhook "
                "(the receiver refused them so far: %d attempts)" % hook.attempts)
        hook.mode = "ok"
        deadline = time.time() + 30
        types = []
        while time.time() < deadline:
            types = [json.loads(b)["type"] for h, b in hook.got]
            if "cluster.ready" in types and "task.succeeded" in types:
                break
            time.sleep(0.2)
        r.check("cluster.created" in types and "cluster.ready" in types and
                types.index("cluster.created") < types.index("cluster.ready"),
                "after the receiver recovers, the events arrive, in order", str(types))
        r.check(all(signature_ok(h, b) for h, b in hook.got) and hook.got,
                "every delivery is signed (HMAC-SHA256 over timestamp and body)")
        r.check(all(json.loads(b).get("cluster_id") in (cid, "") for h, b in hook.got),
                "only alice's cluster's events reach alice's webhook (and her reservation's)")
        rc, out, err = r.cli("alice", "status", "--json")
        st = (loads(out) or {}).get("webhook", {})
        r.check(rc == 0 and st.get("delivered", 0) >= len(hook.got) and st.get("retries", 0) > 0,
                "status shows the deliveries and their retries", out)
        # A receiver that hangs does not stall the broker.
        hook.mode = "hang"
        r.cli("alice", "task", "submit", "--cluster", cid, "--", "true")
        time.sleep(0.5)
        t0 = time.time()
        rc, out, err = r.cli("alice", "status", "--json")
        r.check(rc == 0 and time.time() - t0 < 2.0,
                "the broker answers at once while the receiver hangs (%.2f s)" % (time.time() - t0))
        hook.mode = "ok"

        # Unknown keys and no keys.
        rc, out, err = r.cli("mallory", "status", timeout_ms=1500)
        r.check(rc not in (0, None) and "refused" in err,
                "a key in no account is refused, with a clear error", "%s %s" % (rc, err))
        rc, out, err = r.cli(None, "status", timeout_ms=1500)
        r.check(rc not in (0, None), "a client without a key gets nothing", "%s %s" % (rc, err))

        # Another key cannot take over a worker's id.
        shutil.copytree(r.path("w0"), r.path("thief"), ignore=shutil.ignore_patterns(
            "key.json", "lock", "tasks"))
        r.start_agent("thief", state=r.path("thief"))
        deadline = time.time() + 10
        while time.time() < deadline and "bound to another key" not in r.broker.text():
            time.sleep(0.2)
        r.check("bound to another key" in r.broker.text(),
                "an agent with another key cannot register under a worker's id")
        r.check("bound to another key" in r.agents["thief"].text(),
                "the thief agent is told why")
        r.agents["thief"].signal(signal.SIGTERM)
        hosts = {w["hostname"] for w in r.workers() if w.get("state") == "online"}
        r.check("thief" not in hosts and "w0" in hosts, "the worker is still the real one",
                str(hosts))

        # A restart keeps the binding.
        r.broker.signal(signal.SIGTERM)
        r.check(r.broker.wait(10) == 0, "musterd stops cleanly")
        r.start_broker()
        r.require(r.wait_online(N_AGENTS), "agents back after the restart")
        r.start_agent("thief2", state=r.path("thief"))
        deadline = time.time() + 10
        while time.time() < deadline and "bound to another key" not in r.agents["thief2"].text():
            time.sleep(0.2)
        r.check("bound to another key" in r.agents["thief2"].text(),
                "the binding survives a broker restart")
        ok = True
    except Fatal as e:
        print("# stopped: %s" % e)
    except Watchdog:
        r.failed += 1
        print("not ok - the run finished within %d s" % WATCHDOG_S)
    finally:
        signal.alarm(0)
        for p in r.procs:
            p.signal(signal.SIGTERM)
        for p in r.procs:
            if p.wait(5) is None:
                p.signal(signal.SIGKILL)
                p.wait(5)
        reports = [p.name for p in r.procs if SANITIZER_RE.search(p.text())]
        if reports or not ok or r.failed:
            for p in r.procs:
                if p.name == "musterd" or SANITIZER_RE.search(p.text()):
                    print("# --- %s log (tail)\n%s" % (p.name, p.text()[-3000:]))
        r.check(not reports and not r.cli_reports, "no sanitizer reports", ", ".join(reports))
        for p in r.procs:
            p.close()
        if getattr(r, "receiver", None):
            r.receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (r.passed, r.failed))
    return 0 if ok and r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
