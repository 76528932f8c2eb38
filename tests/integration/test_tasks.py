#!/usr/bin/env python3
"""Integration test: Ray-style tasks end to end. A real musterd, 5 real
muster-agents (simulated GPUs: 2 x RTX 4090 each) and the muster CLI on
127.0.0.1; a cluster of 4 of them.

    python3 test_tasks.py --bindir BUILD_DIR

Covers:
  - a graph of 60 tasks in 6 layers (each depends on two of the layer
    before) with one member killed with SIGKILL while it runs tasks: every
    task ends succeeded, its work completed exactly once (a shared log file
    each attempt appends to), each started only after its dependencies
    ended, tasks lost with the member ran again on another worker, results
    returned; the cluster gets a replacement member;
  - GPUs: CUDA_VISIBLE_DEVICES as assigned, never more GPUs in use on a
    member than it has;
  - retries and their limit, a non-zero exit not retried unless asked,
    timeouts, cancel (its dependent fails with the reason), a failed
    dependency failing its dependents;
  - bounded logs (the broker keeps the latest --task-log-kib) and results
    (over --task-result-max-bytes: the attempt fails, nothing kept);
  - bad input (a cycle, unknown dependencies, more GPUs than any member,
    empty argv, an image, a relative cwd): a clear error, nothing submitted;
  - musterd killed with SIGKILL while tasks run and restarted on its state:
    every task still ends succeeded, none ran twice, those running were not
    restarted; at the end, musterd --check passes and --dump lists every
    task.
Prints one "ok - ..." / "not ok - ..." line per check and "N passed, M
failed"; exits 0 only when every check passed. Every wait has a deadline;
every process started is killed on the way out; the temporary directory is
removed. Standard library only.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import SANITIZER_RE, Fatal, Proc, Watchdog, free_port

from test_clusters import Fleet as BaseFleet

HEARTBEAT_MS = 200
WATCHDOG_S = 280  # ctest gives 300
N_AGENTS = 5
CLUSTER = 4
LOG_KIB = 16
RESULT_MAX = 4096


def loads(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


class Fleet(BaseFleet):
    def start_broker(self):
        self.broker = self.start("musterd", [
            self.bin("musterd"),
            "--agent-endpoint", self.agent_ep(), "--client-endpoint", self.client_ep(),
            "--event-endpoint", "tcp://127.0.0.1:%d" % self.ports[2],
            "--state-dir", os.path.join(self.tmp, "state"),
            "--heartbeat-ms", str(HEARTBEAT_MS), "--liveness", "3",
            "--reconnect-grace-ms", "300", "--restore-grace-ms", "20000",
            "--task-log-kib", str(LOG_KIB), "--task-result-max-bytes", str(RESULT_MAX),
            "--no-verify", "--log-level", "info"])
        deadline = time.time() + 15
        while time.time() < deadline:
            rc, out, _ = self.cli("status", "--json", timeout_ms=500)
            if rc == 0:
                return
            if not self.broker.alive():
                break
            time.sleep(0.1)
        raise Fatal("musterd did not start:\n" + self.broker.text()[-3000:])

    def start_agents(self):
        for i in range(N_AGENTS):
            name = "t%02d" % i
            self.agents[name] = self.start(name, [
                self.bin("muster-agent"), "--broker", self.agent_ep(),
                "--state-dir", os.path.join(self.tmp, name), "--hostname", name,
                "--country", "DE", "--simulate-gpu", "RTX 4090:2", "--bandwidth", "500/400",
                "--task-kill-grace-ms", "500", "--log-level", "info"])

    def wait_online(self, n, limit=20):
        deadline = time.time() + limit
        while time.time() < deadline:
            rc, out, _ = self.cli("workers", "--json")
            j = loads(out) if rc == 0 else None
            if j:
                online = [w for w in j.get("workers", []) if w.get("state") == "online"]
                if len(online) >= n:
                    self.by_id = {w["id"]: w["hostname"] for w in j["workers"]}
                    return True
            time.sleep(0.2)
        return False

    def tasks(self, cid, state=None):
        args = ["task", "list", "--cluster", cid, "--json", "--limit", "10000"]
        if state:
            args += ["--state", state]
        rc, out, err = self.cli(*args)
        j = loads(out) if rc == 0 else None
        if not j:
            raise Fatal("task list failed: %s %s" % (out, err))
        return j

    def show(self, tid):
        rc, out, err = self.cli("task", "show", tid, "--json")
        j = loads(out) if rc == 0 else None
        if not j:
            raise Fatal("task show %s failed: %s %s" % (tid, out, err))
        return j

    def wait_tasks(self, cid, numbers, limit):
        """Wait until these tasks are over; their TaskInfos by number."""
        deadline = time.time() + limit
        while time.time() < deadline:
            j = self.tasks(cid)
            by = {t["number"]: t for t in j.get("tasks", [])}
            if all(n in by and by[n]["state"] in ("succeeded", "failed", "cancelled")
                   for n in numbers):
                return by
            time.sleep(0.2)
        raise Fatal("tasks %s of %s not over in %d s" % (numbers[:5], cid, limit))

    def submit_graph(self, cid, graph, path):
        with open(path, "w") as f:
            json.dump(graph, f)
        rc, out, err = self.cli("task", "submit", "--cluster", cid, "--file", path, "--json")
        j = loads(out) if rc == 0 else None
        if not j:
            raise Fatal("submit %s failed (%s): %s %s" % (path, rc, out, err))
        return j["first"]


def marker_task(name, log, after, sleep_s, result=None, **extra):
    """A task that appends 'start'/'end' lines (with its number and attempt)
    to a shared log, so the test sees every attempt that ran."""
    script = ('echo "start $MUSTER_TASK $MUSTER_ATTEMPT $MUSTER_TASK_DIR" >> %s; sleep %s; '
              'echo "end $MUSTER_TASK $MUSTER_ATTEMPT" >> %s' % (log, sleep_s, log))
    if result:
        script += '; printf "%%s" "%s-$MUSTER_TASK" > result.txt' % result
    t = {"name": name, "argv": ["sh", "-c", script], "after": after, "cpus": 1}
    if result:
        t["result_file"] = "result.txt"
    t.update(extra)
    return t


def read_marks(path):
    marks = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    marks.append((parts[0], int(parts[1]), int(parts[2]),
                                  parts[3] if len(parts) > 3 else ""))
    except OSError:
        pass
    return marks


def test_graph_with_kill(f, cid):
    log = os.path.join(f.tmp, "graph.marks")
    layers, width = 6, 10
    graph = {"tasks": []}
    for layer in range(layers):
        for i in range(width):
            after = []
            if layer:
                after = ["L%dT%d" % (layer - 1, i), "L%dT%d" % (layer - 1, (i + 3) % width)]
            graph["tasks"].append(marker_task("L%dT%d" % (layer, i), log, after, "0.4",
                                              result="r"))
    first = f.submit_graph(cid, graph, os.path.join(f.tmp, "graph.json"))
    numbers = list(range(first, first + layers * width))
    # Kill a member while it runs tasks, once the graph is well under way.
    victim, victim_id, deadline = None, None, time.time() + 60
    while time.time() < deadline and victim is None:
        j = f.tasks(cid)
        done = j["counts"]["succeeded"]
        running = [t for t in j["tasks"] if t["state"] == "running" and t["number"] in numbers]
        if done >= 12 and running:
            victim_id = running[0]["worker_id"]
            victim = f.by_id.get(victim_id)
        else:
            time.sleep(0.1)
    f.require(victim is not None, "a member runs graph tasks mid-run")
    lost_running = [t["number"] for t in f.tasks(cid, "running")["tasks"]
                    if t["worker_id"] == victim_id]
    f.agents[victim].signal(signal.SIGKILL)
    f.note("SIGKILLed %s (%s) running tasks %s" % (victim, victim_id[:8], lost_running))
    by = f.wait_tasks(cid, numbers, 120)
    states = [by[n]["state"] for n in numbers]
    f.check(all(s == "succeeded" for s in states),
            "all %d graph tasks succeeded after a member was killed" % len(numbers),
            str({n: (by[n]["state"], by[n]["reason"]) for n in numbers
                 if by[n]["state"] != "succeeded"}))
    marks = read_marks(log)
    ends = {}
    for kind, n, attempt, _ in marks:
        if kind == "end":
            ends.setdefault(n, []).append(attempt)
    f.check(all(len(ends.get(n, [])) == 1 for n in numbers),
            "each graph task's work completed exactly once",
            str({n: ends.get(n) for n in numbers if len(ends.get(n, [])) != 1}))
    f.check(all(ends.get(n, [None])[0] == by[n]["attempts"] for n in numbers),
            "the completed attempt is the one the broker recorded")
    # Dependencies: every start of a task comes after the end of each of
    # its dependencies (the log is appended in order).
    end_at = {}
    for i, (kind, n, attempt, _) in enumerate(marks):
        if kind == "end":
            end_at[n] = i
    spec_after = {n: [int(a) for a in by[n]["spec"]["after"]] for n in numbers}
    bad = []
    for i, (kind, n, attempt, _) in enumerate(marks):
        if kind == "start" and n in spec_after:
            for d in spec_after[n]:
                if d not in end_at or end_at[d] > i:
                    bad.append((n, d))
    f.check(not bad and len(marks) >= 2 * len(numbers),
            "every task started only after its dependencies ended", str(bad[:5]))
    lost = [n for n in numbers if by[n]["losses"] > 0]
    f.check(set(lost_running) <= set(lost) and lost,
            "tasks running on the killed member were requeued (%s)" % lost)
    f.check(all(by[n]["worker_id"] != victim_id for n in lost),
            "requeued tasks ran on another worker")
    shown = f.show("%s/%d" % (cid, numbers[-1]))
    f.check(shown.get("result_text") == "r-%d" % numbers[-1],
            "a task's result file comes back", repr(shown.get("result_text")))
    # The cluster replaced its lost member (there was a spare agent).
    deadline = time.time() + 20
    members = []
    while time.time() < deadline:
        rc, out, _ = f.cli("cluster", "show", cid, "--json")
        j = loads(out) or {}
        members = [m["worker_id"] for m in j.get("members", []) if m.get("worker_id")]
        if j.get("state") == "ready" and victim_id not in members and len(members) == CLUSTER:
            break
        time.sleep(0.2)
    f.check(victim_id not in members and len(members) == CLUSTER,
            "the cluster got a replacement for the killed member")
    return victim


def test_gpus(f, cid):
    log = os.path.join(f.tmp, "gpus.marks")
    graph = {"tasks": []}
    for i in range(8):
        script = ('echo "start $MUSTER_TASK $MUSTER_ATTEMPT $CUDA_VISIBLE_DEVICES $MUSTER_TASK_DIR" '
                  '>> %s; sleep 0.3; echo "end $MUSTER_TASK $MUSTER_ATTEMPT" >> %s' % (log, log))
        graph["tasks"].append({"argv": ["sh", "-c", script], "gpus": 2 if i % 2 else 1})
    first = f.submit_graph(cid, graph, os.path.join(f.tmp, "gpus.json"))
    numbers = list(range(first, first + 8))
    by = f.wait_tasks(cid, numbers, 60)
    f.check(all(by[n]["state"] == "succeeded" for n in numbers), "GPU tasks succeeded")
    # CUDA_VISIBLE_DEVICES as the broker assigned.
    seen = {}
    with open(log) as fh:
        for line in fh:
            p = line.split()
            if p[0] == "start":
                seen[int(p[1])] = (p[3] if len(p) > 4 else "", p[-1])
    want = {n: ",".join(str(i) for i in by[n]["gpu_indices"]) for n in numbers}
    f.check(all(seen.get(n, ("?",))[0] == want[n] for n in numbers),
            "CUDA_VISIBLE_DEVICES is what the broker assigned",
            str({n: (seen.get(n), want[n]) for n in numbers}))
    f.check(all(len(by[n]["gpu_indices"]) == by[n]["spec"]["gpus"] for n in numbers),
            "each task got as many GPU indices as it asked for")
    # Never more GPUs in use on a worker than it has (2): replay the log.
    in_use, worst, starts = {}, 0, {}
    with open(log) as fh:
        for line in fh:
            p = line.split()
            n = int(p[1])
            w = by[n]["worker_id"]
            if p[0] == "start":
                in_use[w] = in_use.get(w, 0) + by[n]["spec"]["gpus"]
                worst = max(worst, in_use[w])
            else:
                in_use[w] -= by[n]["spec"]["gpus"]
    f.check(worst <= 2, "never more GPUs in use on a member than it has (peak %d)" % worst)


def test_failures(f, cid):
    one = lambda *args: f.cli("task", "submit", "--cluster", cid, "--json", *args)
    ids = {}
    for key, args in [("retry", ["--retries", "2", "--retry-exits", "--", "sh", "-c", "exit 3"]),
                      ("noretry", ["--", "sh", "-c", "exit 4"]),
                      ("timeout", ["--timeout", "1", "--", "sleep", "30"]),
                      ("cancel", ["--", "sleep", "30"]),
                      ("flood", ["--", "sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x"]),
                      ("bigresult", ["--result-file", "r", "--", "sh", "-c",
                                     "head -c %d /dev/zero > r" % (RESULT_MAX * 4)])]:
        rc, out, err = one(*args)
        j = loads(out) if rc == 0 else None
        f.require(j is not None, "submit the %s task" % key, err)
        ids[key] = j["first"]
    rc, out, err = f.cli("task", "submit", "--cluster", cid, "--json", "--after",
                         str(ids["cancel"]), "--", "true")
    dep_cancel = (loads(out) or {}).get("first")
    # A failed task and its dependent, in one graph (a dependency on a task
    # already failed is refused at submission).
    pair = {"tasks": [{"name": "bad", "argv": ["sh", "-c", "exit 5"]},
                      {"name": "after-bad", "argv": ["true"], "after": ["bad"]}]}
    pair_first = f.submit_graph(cid, pair, os.path.join(f.tmp, "pair.json"))
    dep_failed = pair_first + 1
    time.sleep(0.5)
    rc, out, err = f.cli("task", "cancel", "%s/%d" % (cid, ids["cancel"]), "--json")
    f.check(rc == 0 and (loads(out) or {}).get("state") == "cancelled", "task cancel", out + err)
    rc, out, err = f.cli("task", "cancel", "%s/%d" % (cid, ids["cancel"]))
    f.check(rc == 1 and "already" in err, "cancelling a cancelled task is refused", err)
    numbers = list(ids.values()) + [dep_cancel, pair_first, dep_failed]
    by = f.wait_tasks(cid, numbers, 60)
    t = by[ids["retry"]]
    f.check(t["state"] == "failed" and t["attempts"] == 3 and t["failures"] == 3,
            "an exit retried twice, then failed (3 attempts)", str(t["attempts"]) + t["reason"])
    t = by[ids["noretry"]]
    f.check(t["state"] == "failed" and t["attempts"] == 1 and t["exit_code"] == 4,
            "a non-zero exit is not retried unless asked", t["reason"])
    t = by[ids["timeout"]]
    f.check(t["state"] == "failed" and "timed out" in t["reason"] and
            t["finished_at_ms"] - t["started_at_ms"] < 15000,
            "a task past its timeout is stopped and failed", t["reason"])
    t = by[dep_cancel]
    f.check(t["state"] == "failed" and "cancelled" in t["reason"],
            "the dependent of a cancelled task fails with the reason", t["reason"])
    t = by[dep_failed]
    f.check(t["state"] == "failed" and "dependency %d failed" % pair_first in t["reason"],
            "the dependent of a failed task fails with the reason", t["reason"])
    t = by[ids["bigresult"]]
    f.check(t["state"] == "failed" and "limit" in t["reason"] and t["result_bytes"] == 0,
            "a result over the limit fails the attempt, nothing kept", t["reason"])
    # Bounded logs: 200,000 bytes printed, the latest LOG_KIB KiB kept.
    rc, out, err = f.cli("task", "logs", "%s/%d" % (cid, ids["flood"]), "--json")
    j = loads(out) or {}
    f.check(j.get("offset", 0) > 0 and len(j.get("text", "")) <= LOG_KIB * 1024 and
            j.get("next", 0) >= 200000 and j.get("final") is True,
            "logs keep a bounded tail and say what is no longer kept",
            "offset=%s next=%s len=%d" % (j.get("offset"), j.get("next"), len(j.get("text", ""))))


def test_bad_input(f, cid):
    before = f.tasks(cid)["total"]
    cycle = {"tasks": [{"name": "a", "argv": ["true"], "after": ["b"]},
                       {"name": "b", "argv": ["true"], "after": ["a"]}]}
    path = os.path.join(f.tmp, "cycle.json")
    with open(path, "w") as fh:
        json.dump(cycle, fh)
    rc, out, err = f.cli("task", "submit", "--cluster", cid, "--file", path)
    f.check(rc == 2 and "cycle" in err, "a cycle is refused before sending", err)
    cases = [
        ("an unknown dependency", ["--after", "99999", "--", "true"], "does not have"),
        ("more GPUs than any member", ["--gpus", "3", "--", "true"], "more than any member"),
        ("a relative cwd", ["--cwd", "rel/dir", "--", "true"], "absolute"),
    ]
    for what, args, text in cases:
        rc, out, err = f.cli("task", "submit", "--cluster", cid, *args)
        f.check(rc in (1, 2) and text in err, "%s is refused" % what, "%s %s" % (rc, err))
    rc, out, err = f.cli("task", "submit", "--cluster", cid, "--")
    f.check(rc == 2, "an empty argv is refused", err)
    image = {"tasks": [{"argv": ["true"]}, {"argv": ["true"], "image": "busybox"}]}
    path = os.path.join(f.tmp, "image.json")
    with open(path, "w") as fh:
        json.dump(image, fh)
    rc, out, err = f.cli("task", "submit", "--cluster", cid, "--file", path)
    f.check(rc == 1 and "task 1" in err and "image" in err,
            "an image is refused, naming the task, and the graph is not half-submitted", err)
    f.check(f.tasks(cid)["total"] == before, "nothing was submitted by bad input")


def test_broker_restart(f, cid):
    log = os.path.join(f.tmp, "restart.marks")
    graph = {"tasks": [marker_task("R%d" % i, log, ["R%d" % (i - 4)] if i >= 4 else [], "0.6")
                       for i in range(16)]}
    first = f.submit_graph(cid, graph, os.path.join(f.tmp, "restart.json"))
    numbers = list(range(first, first + 16))
    deadline = time.time() + 30
    running = []
    while time.time() < deadline and not running:
        running = [t["number"] for t in f.tasks(cid, "running")["tasks"] if t["number"] in numbers]
        time.sleep(0.05)
    f.require(running, "graph tasks run when musterd is killed")
    f.broker.signal(signal.SIGKILL)
    f.broker.wait(10)
    f.note("musterd SIGKILLed with tasks running; restarting it")
    f.start_broker()
    by = f.wait_tasks(cid, numbers, 90)
    f.check(all(by[n]["state"] == "succeeded" for n in numbers),
            "after a broker SIGKILL and restart, every task succeeded",
            str({n: (by[n]["state"], by[n]["reason"]) for n in numbers
                 if by[n]["state"] != "succeeded"}))
    ends = {}
    for kind, n, attempt, _ in read_marks(log):
        if kind == "end":
            ends.setdefault(n, []).append(attempt)
    f.check(all(len(ends.get(n, [])) == 1 for n in numbers),
            "no task ran twice across the broker restart",
            str({n: ends.get(n) for n in numbers if len(ends.get(n, [])) != 1}))
    f.check(all(by[n]["attempts"] == 1 and by[n]["losses"] == 0 for n in running),
            "tasks running when musterd died kept running: not restarted (%s)" % running,
            str({n: (by[n]["attempts"], by[n]["losses"]) for n in running}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="muster-tasks-")
    f = Fleet(args.bindir, tmp)
    f.ports = [free_port(), free_port(), free_port()]

    def on_alarm(signum, frame):
        raise Watchdog()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(WATCHDOG_S)
    ok = False
    try:
        f.start_broker()
        f.start_agents()
        f.require(f.wait_online(N_AGENTS), "%d agents online" % N_AGENTS)
        rc, out, err = f.cli("cluster", "create", "--gpu", "RTX 4090", "--workers",
                             str(CLUSTER), "--hours", "2", "--wait", "--json", timeout_ms=20000)
        j = loads(out) if rc == 0 else None
        f.require(j is not None and j.get("state") == "ready", "a cluster of %d is ready" % CLUSTER,
                  out + err)
        cid = j["id"]
        test_bad_input(f, cid)
        test_gpus(f, cid)
        test_failures(f, cid)
        test_graph_with_kill(f, cid)
        test_broker_restart(f, cid)
        rc, out, err = f.cli("cluster", "release", cid)
        f.check(rc == 0, "release the cluster")
        total = f.tasks(cid)["total"]
        # The client library's example program (examples/rent_and_run.c):
        # rent, run a graph while watching events, print results, release.
        ex = os.path.join(f.bindir, "examples", "rent_and_run")
        if os.path.exists(ex):
            r = subprocess.run([ex, f.client_ep(), "tcp://127.0.0.1:%d" % f.ports[2]],
                               capture_output=True, timeout=60)
            text = r.stdout.decode(errors="replace")
            f.check(r.returncode == 0 and "3 succeeded" in text and "shard 1 on GPU" in text,
                    "the client library example rents a cluster and runs its graph",
                    text + r.stderr.decode(errors="replace")[-500:])
        f.broker.signal(signal.SIGTERM)
        f.check(f.broker.wait(10) == 0, "musterd stops cleanly")
        state = os.path.join(tmp, "state")
        r = subprocess.run([f.bin("musterd"), "--state-dir", state, "--check"],
                           capture_output=True, timeout=60)
        f.check(r.returncode == 0, "musterd --check passes with tasks saved",
                r.stderr.decode(errors="replace")[-500:])
        r = subprocess.run([f.bin("musterd"), "--state-dir", state, "--dump"],
                           capture_output=True, timeout=60)
        dump = loads(r.stdout.decode(errors="replace")) or {}
        saved = [c for c in dump.get("clusters", []) if c.get("id") == cid]
        tasks = saved[0].get("tasks", []) if saved else []
        f.check(len(tasks) == total and all(t["state"] in ("succeeded", "failed", "cancelled")
                                            for t in tasks),
                "musterd --dump lists the cluster's %d tasks, all final" % total,
                "%d of %d" % (len(tasks), total))
        ok = True
    except Fatal as e:
        f.note("stopped: %s" % e)
    except Watchdog:
        f.failed += 1
        print("not ok - the run finished within %d s" % WATCHDOG_S, flush=True)
    finally:
        signal.alarm(0)
        for p in f.procs:
            p.signal(signal.SIGTERM)
        for p in f.procs:
            if p.wait(5) is None:
                p.signal(signal.SIGKILL)
                p.wait(5)
        reports = [p.name for p in f.procs if SANITIZER_RE.search(p.text())]
        if reports or not ok or f.failed:
            for p in f.procs:
                if p.name == "musterd" or SANITIZER_RE.search(p.text()):
                    print("# --- %s log (tail)\n%s" % (p.name, p.text()[-4000:]))
        f.check(not reports and not f.cli_sanitizer_reports,
                "no sanitizer reports", ", ".join(reports))
        for p in f.procs:
            p.close()
        os.system("rm -rf '%s'" % tmp)
    print("%d passed, %d failed" % (f.passed, f.failed))
    return 0 if ok and f.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
