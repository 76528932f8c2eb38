"""Shared by the integration tests: processes that die with the test, free
ports on 127.0.0.1, logs, and the pattern of a sanitizer report."""

import ctypes
import re
import signal
import socket
import subprocess

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
                          r"SUMMARY: (Address|Leak|Undefined)")


class Fatal(Exception):
    """A failed check after which the rest of the run makes no sense."""


class Watchdog(Exception):
    """The whole run took longer than it may."""


def set_pdeathsig():
    """In the child before exec: die with the test (e.g. when ctest kills it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort only
        pass


def free_port():
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A process we started, with its combined output in a log file."""

    def __init__(self, name, argv, logpath):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.log.write(("=== %s\n" % " ".join(argv)).encode())
        self.log.flush()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def text(self):
        if not self.log.closed:
            self.log.flush()
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        self.log.close()
