"""The process a sandbox runs: imports a tool by reference and calls it, speaking JSON lines.

Run as a file (`python child.py once|session [worker pid]`), never imported by the worker,
and stdlib-only until it imports the tool, so starting it costs an interpreter plus the tool's
own module. Given the worker's pid, it dies with the worker. The children of the fork-server
template (template.py) answer through `respond`, so a forked call answers the same way.
Each request line is `{"ref", "args", "key", "limits", "env"}`; each answer line is
`{"ok": true, "value": "<JSON text>"}` or `{"ok": false, "type", "message", "limit"}`.
The protocol keeps private copies of stdin and stdout: whatever the tool prints goes to
stderr, so a stray `print` can never corrupt an answer. `once` answers one request with hard
limits; `session` answers until stdin closes, with per-call soft limits (a process that lives
across calls needs CPU limits relative to what it has used so far). Given a pipe in
`TETHER_LEASE_FD`, a thread reads deadlines from it (one a line, on the monotonic clock) and
kills the process group once one passes unrenewed: the worker may be frozen, its run's lease
lapsing, and no call may go on once another worker can resume the run.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import math
import os
import resource
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from typing import IO, Any

LEASE_FD = "TETHER_LEASE_FD"
_MIB = 1024 * 1024
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIMITED = (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NOFILE)


def _set_limits(limits: dict[str, int], hard: bool) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits["cpu_seconds"]
    wanted = (cpu, limits["memory_mb"] * _MIB, limits["open_files"])
    for which, soft in zip(_LIMITED, wanted, strict=True):
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft = min(soft, current_hard)
        # CPU: SIGXCPU at the soft limit, SIGKILL a second later should the tool catch it.
        new_hard = (soft + 1 if which == resource.RLIMIT_CPU else soft) if hard else current_hard
        resource.setrlimit(which, (soft, new_hard))


def _load(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _encode(tool: Any, value: Any) -> str:
    adapter = getattr(tool, "result_adapter", None)
    if adapter is not None:
        return str(adapter.dump_json(value).decode())
    return json.dumps(value)


def _answer(request: dict[str, Any], hard_limits: bool) -> dict[str, Any]:
    tool = _load(request["ref"])
    fn = getattr(tool, "fn", tool)
    kwargs = dict(request["args"])
    if request.get("key") is not None:
        kwargs["idempotency_key"] = request["key"]
    _set_limits(request["limits"], hard_limits)
    passed: dict[str, str] = request.get("env") or {}
    before = {name: os.environ.get(name) for name in passed}
    os.environ.update(passed)  # for this call only: a session's next call may be another tool
    try:
        result = asyncio.run(fn(**kwargs)) if inspect.iscoroutinefunction(fn) else fn(**kwargs)
    except MemoryError:
        mb = request["limits"]["memory_mb"]
        return {"ok": False, "type": "MemoryError", "limit": "memory",
                "message": f"went over its memory limit of {mb} MB and was stopped"}  # fmt: skip
    except BaseException as e:  # the tool's error is the answer, whatever it is
        detail = "".join(traceback.format_exception(e)[-6:])
        return {"ok": False, "type": type(e).__name__, "message": f"{e}\n{detail}".strip()}
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        return {"ok": True, "value": _encode(tool, result)}
    except Exception as e:
        return {"ok": False, "type": "UnserialisableResult",
                "message": f"returned a {type(result).__name__} that is not JSON: {e}"}  # fmt: skip


@functools.cache
def _libc() -> Any:
    """Loaded once: the fork server's template ties itself with it, and each spare it forks
    then finds it ready rather than paying ctypes' lookups (~50 page faults) again."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def die_with(parent: int) -> None:
    """Tie this process to its parent's life (Linux): the worker's, or the template's. A
    worker SIGKILLed during a call would otherwise leave its tool running in its own session:
    an email sent seconds later, after the run was handed on and a person was shown that no
    email had gone out."""
    if not sys.platform.startswith("linux"):
        return
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the tie was made
        os._exit(1)


def _bounded_by_lease(fd: int) -> None:
    """Kill this process group once a deadline read from `fd` passes with no later one."""
    until, pending = math.inf, b""
    while True:
        timeout = None if until == math.inf else max(0.0, until - time.monotonic())
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.killpg(0, signal.SIGKILL)
        data = os.read(fd, 4096)
        if not data:
            return  # the worker closed it: it stops this process itself
        *lines, pending = (pending + data).split(b"\n")
        if lines:
            until = float(lines[-1])


def rehearse(refs: Iterable[str]) -> None:
    """Walk what `respond` touches, short of limits and the tool's call, for the tools at
    `refs` whose modules are imported (nothing is imported here): a fork-server spare
    (template.py) does it while it waits for a call."""
    request = json.loads(json.dumps({"ref": "", "args": {}, "key": None, "env": {}}))
    for ref in refs:
        if ref.partition(":")[0] not in sys.modules:
            continue
        tool = _load(ref)
        inspect.iscoroutinefunction(getattr(tool, "fn", tool))
        getattr(tool, "result_adapter", None)
    resource.getrusage(resource.RUSAGE_SELF)
    for which in _LIMITED:
        resource.getrlimit(which)
    os.environ.update(request["env"])
    json.dumps({"ok": True, "value": _encode(None, request["args"])})


def respond(line: str, hard_limits: bool) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        return _answer(json.loads(line), hard_limits)
    except Exception as e:  # the tool could not be loaded at all
        return {"ok": False, "type": type(e).__name__, "message": str(e)}


def serve(requests: IO[str], answers: IO[str], once: bool) -> None:
    """Answer request lines: one, with hard limits, if `once`; else until `requests` ends or
    a limit stopped a call."""
    for line in requests:
        answer = respond(line, hard_limits=once)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if once or answer.get("limit"):
            break


def main() -> None:
    mode = sys.argv[1]
    if len(sys.argv) > 2:
        die_with(int(sys.argv[2]))
    lease = os.environ.pop(LEASE_FD, None)
    if lease is not None:
        os.set_inheritable(int(lease), False)  # not the tool's to hold open
        threading.Thread(target=_bounded_by_lease, args=(int(lease),), daemon=True).start()
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    serve(requests, answers, once=mode == "once")


if __name__ == "__main__":
    main()
