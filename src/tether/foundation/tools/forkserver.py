"""The worker's side of the fork server: one-shot tool calls as children of a warm template.

A `once` child started afresh pays an interpreter and the import of tether and the tool's
module on every call: 340-510 ms for a tool that adds two integers, against 1-3 ms for the
same function as a `ctx.step`. `ForkServer` instead starts one template process
(template.py) at its first call and has it fork a child per call; it starts another if the
template died. The child keeps every promise of a fresh process: its own working directory,
session and rlimits, killed at the wall timeout, dead with the worker (the child dies with
the template, the template with the worker).

The template is started from a keeper thread of its own that waits on it for its whole
life: PR_SET_PDEATHSIG fires when the *thread* that started a process ends, and the threads
that run calls come and go. A call talks to its child over a fresh socket pair whose other
end goes to the template with the call, so calls from any thread and event loop proceed side
by side. A tool runs the code the template imported, as a workflow runs the code its worker
imported: an edit to a tool's module takes effect when the worker restarts.

A call never outlives its run's lease. The worker's heartbeats renew it (`renew`, a deadline
on the shared monotonic clock) and the template kills the child's process group once the
deadline passes unrenewed: a worker frozen in the middle of a call (SIGSTOP, a long pause)
cannot stop it, but the template, a process of its own, does, before the lease expires and
another worker may resume the run. A heartbeat that finds the lease taken kills the run's
calls at once (`lease_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from tether.foundation.tools.contract import LaneResult, ToolInvocation
from tether.foundation.tools.process import (
    ANSWER_LIMIT,
    STOP_GRACE,
    answer_result,
    child_env,
    exit_failure,
    lease_failure,
    request,
    timeout_failure,
)

_DIED = -signal.SIGKILL  # no exit report: the template died, and the child with it
_CHUNK = 256 * 1024


class _Template:
    """One started template: the worker's end of its control socket, and the process."""

    def __init__(self, home: Path) -> None:
        self.owner = os.getpid()  # the worker it dies with
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [
            sys.executable, "-P", "-m", "tether.foundation.tools.template",
            str(theirs.fileno()), str(self.owner),
        ]  # fmt: skip
        started: Future[subprocess.Popen[bytes]] = Future()

        def keep() -> None:
            try:
                proc = subprocess.Popen(
                    argv, cwd=home, env=child_env(home), start_new_session=True,
                    stdin=subprocess.DEVNULL, stdout=2,
                    pass_fds=(theirs.fileno(),),
                )  # fmt: skip
            except BaseException as e:
                started.set_exception(e)
                return
            started.set_result(proc)
            proc.wait()

        self._keeper = threading.Thread(target=keep, name="tether-tool-template", daemon=True)
        self._keeper.start()
        try:
            self.proc = started.result()
        finally:
            theirs.close()

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def send(self, order: dict[str, object], fds: Sequence[int] = ()) -> None:
        socket.send_fds(self.control, [json.dumps(order).encode()], fds)

    def tell(self, order: dict[str, object]) -> None:
        """A message that must not block its sender (the heartbeat thread among them)."""
        with contextlib.suppress(OSError):  # a dead template took its children with it
            self.control.send(json.dumps(order).encode(), socket.MSG_DONTWAIT)

    def kill_call(self, call: int) -> None:
        self.tell({"kill": call})

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def close(self) -> None:
        """Closing the control socket ends the template (and any child still running)."""
        self.control.close()
        self._keeper.join(STOP_GRACE)


class ForkServer:
    """Runs one-shot calls as forks of a template, started lazily and again if it died."""

    def __init__(self, home: Path) -> None:
        self._home = home
        self._lock = threading.Lock()
        self._calls = itertools.count()
        self._template: _Template | None = None
        self._closer: weakref.finalize[[], ForkServer] | None = None  # runs even if we are dropped
        # The heartbeat thread's, never held while a template starts or stops
        self._runs_lock = threading.Lock()
        self._leases: dict[str, float] = {}  # run id -> when its calls must stop (monotonic)
        self._running: dict[str, dict[int, _Template]] = {}  # run id -> its calls in flight
        self._lost: set[int] = set()  # calls killed because their run's lease was lost

    def _live_template(self, dead: _Template | None = None) -> _Template:
        with self._lock:
            current = self._template
            # a process forked from the worker needs a template of its own, tied to its life
            if (
                current is None or current is dead or not current.alive
                or current.owner != os.getpid()
            ):  # fmt: skip
                self._retire()
                self._home.mkdir(parents=True, exist_ok=True)
                current = self._template = _Template(self._home)
                self._closer = weakref.finalize(self, current.close)
            return current

    def _retire(self) -> None:
        """Close the current template (with the lock held)."""
        if self._closer is not None:
            self._closer()
        self._template = self._closer = None

    def _fork(self, order: dict[str, object]) -> tuple[socket.socket, _Template]:
        """Have the template fork a child for one call; the socket to talk to it."""
        mine, theirs = socket.socketpair()
        template = self._live_template()
        try:
            try:
                template.send(order, [theirs.fileno()])
            except OSError:  # it died since we looked
                template = self._live_template(template)
                template.send(order, [theirs.fileno()])
        finally:
            theirs.close()
        mine.setblocking(False)
        return mine, template

    async def call(
        self, invocation: ToolInvocation, workdir: Path, enter: int | None = None
    ) -> LaneResult:
        """Run one call in a forked child; inside the sandbox of process `enter` if given."""
        tool, call, run_id = invocation.tool, next(self._calls), invocation.run_id
        order: dict[str, object] = {
            "id": call, "module": tool.ref.partition(":")[0], "workdir": str(workdir),
        }  # fmt: skip
        if enter is not None:
            order["enter"] = enter
        with self._runs_lock:
            until = self._leases.get(run_id)
        if until is not None:
            order["until"] = until
        sock, template = self._fork(order)
        with self._runs_lock:
            self._running.setdefault(run_id, {})[call] = template
            renewed = self._leases.get(run_id)
        if renewed is not None and renewed != until:  # a heartbeat came in between
            template.tell({"renew": [call], "until": renewed})
        answers = _Answers(sock)
        ended = False  # the child answered, or its end was reported: nothing of it runs now
        try:
            try:
                line = await asyncio.wait_for(_exchange(answers, request(invocation)), tool.timeout)
            except TimeoutError:
                template.kill_call(call)
                await self._wait_for_end(answers, template)
                ended = True
                return LaneResult(failure=timeout_failure(tool.timeout))
            ended = True
            message = json.loads(line) if line else {"exit": _DIED}
            if "exit" in message:
                if message.get("expired") or self._was_lost(call) or self._expired(run_id):
                    return LaneResult(failure=lease_failure())
                return LaneResult(failure=exit_failure(message["exit"], tool.limits.cpu_seconds))
            return answer_result(message)
        finally:
            if not ended:  # cancelled mid-call
                template.kill_call(call)
            sock.close()
            with self._runs_lock:
                calls = self._running.get(run_id, {})
                calls.pop(call, None)
                if not calls:
                    self._running.pop(run_id, None)
                self._lost.discard(call)

    def _was_lost(self, call: int) -> bool:
        with self._runs_lock:
            return call in self._lost

    def _expired(self, run_id: str) -> bool:
        """The run's deadline has passed: the template stops its calls then."""
        with self._runs_lock:
            until = self._leases.get(run_id)
        return until is not None and time.monotonic() >= until

    def renew(self, run_id: str, until: float) -> None:
        """The run's calls (and those it starts) stop at `until` unless renewed again."""
        with self._runs_lock:
            self._leases[run_id] = until
            calls = list(self._running.get(run_id, {}).items())
        for template in {t for _, t in calls}:
            template.tell({"renew": [c for c, t in calls if t is template], "until": until})

    def lease_lost(self, run_id: str) -> None:
        """Kill the run's calls in flight now."""
        with self._runs_lock:
            self._leases.pop(run_id, None)
            calls = list(self._running.get(run_id, {}).items())
            self._lost.update(c for c, _ in calls)
        for call, template in calls:
            template.kill_call(call)

    def forget(self, run_id: str) -> None:
        """This worker no longer runs the run: its next calls start with no deadline known."""
        with self._runs_lock:
            self._leases.pop(run_id, None)

    async def _wait_for_end(self, answers: _Answers, template: _Template) -> None:
        """Until the template reports the killed child's end; one that does not within the
        grace is stuck, and is replaced (its children die with it)."""
        try:
            await asyncio.wait_for(_exit_report(answers), STOP_GRACE)
        except TimeoutError:
            template.kill()
            with self._lock:
                if self._template is template:
                    self._retire()

    def close(self) -> None:
        with self._lock:
            self._retire()


class _Answers:
    """The lines coming back on a call's socket: the child's answer, the template's exit report.

    Read with the loop's own socket calls rather than a StreamReader and its transport, which
    cost the worker about 90 µs of CPU a call to build, use and tear down for two short lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._scanned = 0  # no newline before here

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self.sock, data)

    async def line(self) -> bytes:
        """The next line, or b"" once the socket has ended without one."""
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if self._scanned > ANSWER_LIMIT:
                raise ValueError(f"a tool's answer is over {ANSWER_LIMIT} bytes on one line")
            chunk = await self._loop.sock_recv(self.sock, _CHUNK)
            if not chunk:
                return b""
            self._buffer += chunk
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        self._scanned = 0
        return line


async def _exchange(answers: _Answers, line: bytes) -> bytes:
    """Send the request; the child's answer line, or its exit report if it died first."""
    # a child gone already has left its exit report there to read
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        await answers.send(line)
    return await answers.line()


async def _exit_report(answers: _Answers) -> None:
    """Until the template's exit line (or the end, should the template have died)."""
    while line := await answers.line():
        if "exit" in json.loads(line):
            return
