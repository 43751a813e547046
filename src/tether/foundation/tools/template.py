"""The fork-server template: a warm interpreter that forks one tool process per call.

Starting an interpreter that imports tether and a tool's module costs 300-500 ms a call;
a fork of one that has already imported them costs a few milliseconds, most of them spent
by the new child faulting in its copy of the parent's pages. So the template forks each
child one call ahead: a *spare* gets ready (own session, tied to the template's life, the
template's other descriptors closed, the answering path rehearsed) and waits; a call is
handed to it, and the next spare is forked while it runs. The worker (forkserver.py) starts
the template at its first one-shot call as `python -P -m tether.foundation.tools.template
CONTROL_FD WORKER_PID`, and the template dies with the worker.

Messages on the control socket (SOCK_SEQPACKET, one JSON object each):
- `{"id", "module", "workdir", "enter"?}` with one end of a fresh socket pair attached
  (SCM_RIGHTS): a call. Its child enters the sandbox of process `enter` if given
  (namespaces.py), reads the request line from that socket and answers as child.py's `once`
  mode does, limits included, then exits; once the child has been reaped, the template
  writes `{"exit": code}` there too (the worker reads it when no answer came). The template
  then imports the module if it had not (the next spare has it; this call's child imports it
  itself, and an import that fails is the child's to report).
- `{"kill": id}`: the worker gave up on the call (its wall timeout, the call was cancelled,
  or the run's lease was lost); its child's process group is killed. The template kills
  before it reaps, so the group id cannot have been reused.
- `"until"` in a call, and `{"renew": [id, ...], "until": t}`: the call's run is held until
  `t` on the monotonic clock (which every process on the machine shares). A call still
  running then is killed, whatever the worker is doing (it may be frozen, which is exactly
  when its lease lapses), and its exit report says `"expired": true`.
The template stays single-threaded: forking it is safe, forking the worker (which runs
threads) is not; so a tool module must not start threads when imported (a tool may when
called). A child leaves as multiprocessing's forked children do: stdio flushed, the
template's atexit handlers not run.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from tether.foundation.tools import child, namespaces
from tether.foundation.tools.registry import tools

_HANDOFF = 3  # where a spare keeps its end of the handoff socket
_MESSAGE = 64 * 1024


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def _spare(template: int, handoff: int) -> NoReturn:
    """A forked child: get ready, wait for a call, answer it, exit (never return)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)  # the template's, about to be closed
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own process group: a kill reaches whatever the tool starts
        child.die_with(template)
        os.dup2(handoff, _HANDOFF)
        os.closerange(_HANDOFF + 1, os.sysconf("SC_OPEN_MAX"))  # the template's sockets
        with contextlib.suppress(Exception):  # a failed rehearsal leaves the faults to the call
            _rehearse()
        message, fds, _, _ = socket.recv_fds(socket.socket(fileno=_HANDOFF), _MESSAGE, 1)
        if not message:
            os._exit(0)  # the template retired this spare unused
        _answer(json.loads(message), fds[0])
        code = 0
    finally:
        _flush()
        os._exit(code)


def _rehearse() -> None:
    """Walk the answering path while no call waits, so a call finds its pages already ours.

    A fresh fork shares the template's memory copy-on-write, and CPython writes to every
    object it touches (its reference count), so the first touch of each page costs a fault:
    about 290 of them, some 5 µs each here, on the way from a hand-off to an answer. Taken
    here instead, they leave about 50 (the tool's own call, the limits) on the call's path.
    Nothing is called and no limit set: those wait for the call's own request."""
    order = json.loads(json.dumps({"id": 0, "module": "", "workdir": os.getcwd(), "until": 0.0}))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        requests, answers = os.fdopen(os.dup(ours.fileno()), "r"), os.fdopen(theirs.detach(), "w")
        with requests, answers:
            answers.write(json.dumps({"ok": True, "value": "null"}) + "\n")
            answers.flush()
            requests.readline()
    os.chdir(order["workdir"])
    # a value never set before, as a call's directory is: libc stores each new one
    os.environ.update(HOME=order["workdir"] + "/.", TMPDIR=order["workdir"] + "/.")
    tempfile.tempdir = None
    child.rehearse(tool.ref for tool in tools)
    _flush()


def _answer(order: dict[str, Any], conn: int) -> None:
    """Read the call's request from `conn` and answer it there, from inside the sandbox
    named by `enter`, if any."""
    requests, answers = os.fdopen(conn, "r"), os.fdopen(os.dup(conn), "w")
    try:
        if "enter" in order:
            namespaces.enter(order["enter"])
    except OSError as e:  # the tool has not run: a plain failure, not an interrupted call
        answer = {"ok": False, "type": "SandboxError", "message": f"cannot enter it: {e}"}
    else:
        workdir = order["workdir"]
        os.chdir(workdir)
        os.environ.update(HOME=workdir, TMPDIR=workdir)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again
        answer = child.respond(requests.readline(), hard_limits=True)
    _flush()  # the tool's own output first: the answer means it has finished
    answers.write(json.dumps(answer) + "\n")
    answers.flush()


@dataclass
class _Child:
    """A forked child: the spare while it holds `handoff`, a call's once it has `conn`."""

    pid: int
    handoff: socket.socket | None = None
    conn: socket.socket | None = None
    call: int | None = None
    until: float | None = None  # killed then, unless renewed: its run's lease (monotonic)
    expired: bool = False


class Template:
    def __init__(self, control: socket.socket) -> None:
        self._control = control
        # A child's end reaches the loop as SIGCHLD through a pipe; children are reaped only
        # there, so a pid in `_children` is never one the kernel has already handed on.
        self._ended, wakeup = os.pipe()
        os.set_blocking(self._ended, False)
        os.set_blocking(wakeup, False)
        signal.set_wakeup_fd(wakeup)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd does the work
        self._poller = select.poll()
        self._poller.register(control, select.POLLIN)
        self._poller.register(self._ended, select.POLLIN)
        self._children: dict[int, _Child] = {}  # by pid
        self._calls: dict[int, _Child] = {}  # by call id
        self._spare: _Child | None = None

    def serve(self) -> None:
        self._fork_spare()
        while True:
            ready = self._poller.poll(self._next_deadline())
            for fd, _events in ready:
                if fd == self._ended:
                    self._reap_all()
                    continue
                message, fds, _, _ = socket.recv_fds(self._control, _MESSAGE, 1)
                if not message:
                    return  # the worker has gone; the children die with us
                order = json.loads(message)
                if "kill" in order:
                    self._kill(order["kill"])
                elif "renew" in order:
                    for call in order["renew"]:
                        if call in self._calls:
                            self._calls[call].until = order["until"]
                else:
                    self._start(message, order, socket.socket(fileno=fds[0]))
            if not ready or not self._poller.poll(0):  # any renewal on its way is read first
                self._expire()

    def _next_deadline(self) -> int | None:
        """Milliseconds until the next call's deadline (None: no call has one)."""
        due = [c.until for c in self._calls.values() if c.until is not None and not c.expired]
        return max(0, int((min(due) - time.monotonic()) * 1000) + 1) if due else None

    def _expire(self) -> None:
        """Kill the calls whose run's lease ran out unrenewed."""
        now = time.monotonic()
        for call, running in self._calls.items():
            if running.until is not None and not running.expired and running.until <= now:
                running.expired = True
                self._kill(call)

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        _flush()  # or every child would write the template's buffered output again
        gc.freeze()  # the child's collections then leave the template's objects (and pages) be
        template = os.getpid()
        pid = os.fork()
        if pid == 0:
            _spare(template, theirs.fileno())
        theirs.close()
        self._children[pid] = self._spare = _Child(pid, handoff=ours)

    def _start(self, message: bytes, order: dict[str, Any], conn: socket.socket) -> None:
        while True:
            spare = self._spare
            if spare is None:
                self._fork_spare()
                continue
            self._spare = None
            assert spare.handoff is not None
            try:
                socket.send_fds(spare.handoff, [message], [conn.fileno()])
                break
            except OSError:  # it died waiting; reaping it is left to the loop
                pass
        spare.conn, spare.call, spare.until = conn, order["id"], order.get("until")
        self._calls[order["id"]] = spare
        module = order["module"]
        if module not in sys.modules:
            # an import that fails is the child's to meet again and report, whatever it was
            with contextlib.suppress(BaseException):
                importlib.import_module(module)
        self._fork_spare()

    def _kill(self, call: int) -> None:
        running = self._calls.get(call)
        if running is None:
            return  # reaped already: its exit report is on its way
        for kill in (os.kill, os.killpg):  # killpg fails before its setsid; then it has no group
            with contextlib.suppress(ProcessLookupError):
                kill(running.pid, signal.SIGKILL)

    def _reap_all(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._ended, 4096):
                pass
        while self._children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            self._reap(self._children.pop(pid), status)

    def _reap(self, ended: _Child, status: int) -> None:
        if ended.handoff is not None:
            ended.handoff.close()
        if ended is self._spare:
            self._spare = None
        if ended.conn is None or ended.call is None:
            return
        del self._calls[ended.call]
        report = {"exit": os.waitstatus_to_exitcode(status), "expired": ended.expired}
        line = json.dumps(report) + "\n"
        with contextlib.suppress(OSError):  # never block the template on one worker's socket
            ended.conn.send(line.encode(), socket.MSG_DONTWAIT)
        ended.conn.close()


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    child.die_with(int(sys.argv[2]))
    Template(control).serve()


if __name__ == "__main__":
    main()
