"""The `bubblewrap` lanes: the local lanes, each child inside `bwrap --unshare-all`.

A sandbox sees only what a call needs, read-only: the system's programs and libraries (/usr
and the /bin, /lib links), the few /etc files they read (the dynamic linker's cache, name
resolution, certificates, the time zone, and a passwd/group naming only root and nobody),
and the interpreter, its libraries and every entry of the worker's import path, which hold
the tool's module and what it imports. Nothing else of the host is there: not the data
directory (tether's database, other runs' sessions and workspaces, hidden under an empty
tmpfs where an import path holds it), not /etc/shadow, /root or the home directories, not
the worker's environment or processes (own pid namespace, a small environment). /tmp is a
private tmpfs, and the only writable directory from the host is the call's own (the
throwaway dir, the run's session dir, or the named workspace). The tool runs as nobody
(uid 65534) in a user namespace of its own with no capabilities, and every namespace is
unshared, the network included (loopback too), unless the tool declared `network=True`.
The backend runs bwrap once when constructed, so a machine where it cannot start fails at
configuration time with bwrap's own complaint, not at a call.

A session's process is started by bwrap, as the command it sandboxes. A one-shot call pays no
interpreter start: bwrap builds the call's sandbox around a placeholder (`cat`, which echoes
a line once the sandbox is ready), a child forked from the worker's warm template enters it
(tools/namespaces.py) and runs the tool, and the sandbox is killed after the call.

bwrap takes 10-20 ms to build a sandbox, more than the rest of a call. So an ephemeral call
takes a sandbox built ahead, around a fresh throwaway directory, with the network the tool
declared (one kept ready per setting, started by the previous such call, as the template
keeps a spare child forked ahead), and has the next one built while it runs. A sandbox is a
call's only once its child enters it: one waiting holds no run's code or data, belongs to no
run, and is torn down, its directory removed, when the lanes close (or, at the latest, with
the worker, as bwrap's `--die-with-parent` has it). A workspace call's directory is named by
the tool, so its sandbox is built at the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.tools.contract import LaneResult, ToolInvocation
from tether.foundation.tools.forkserver import ForkServer
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.process import STOP_GRACE, exit_failure, timeout_failure

# Where the system's programs and libraries live; on a merged-/usr system all but /usr are
# links into it, and are links in the sandbox too.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What of /etc a program reads to run: the dynamic linker, name resolution, TLS roots, time.
_ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
    "resolv.conf", "hosts", "host.conf", "nsswitch.conf", "gai.conf", "protocols", "services",
    "ssl", "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies", "mime.types",
)  # fmt: skip
_NOBODY = 65534
_PASSWD = "root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"
_KERNEL = ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]


def _system() -> list[str]:
    view: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            view += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            view += ["--ro-bind", path, path]
    for name in _ETC:
        view += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return view


def _too_broad(path: Path) -> bool:
    """An import path entry that would show the sandbox a whole home or the root: a worker
    started from its home directory has that on sys.path, and the tool needs none of it."""
    homes = {Path("/"), Path("/root"), Path("/home"), Path.home()}
    return path in homes or path.parent == Path("/home")


def _code() -> list[Path]:
    """The interpreter (its prefix and the venv's), and every import path entry that exists,
    as Python names them and resolved: the tool must import what the worker imports."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found: set[Path] = set()
    for root in (*roots, *(p for p in sys.path if p)):
        path = Path(root).absolute()
        if path.exists():
            found |= {path, path.resolve()}
    found = {p for p in found if not _too_broad(p) and not p.is_relative_to("/usr")}
    # a path inside another bound one comes with it
    return sorted(p for p in found if not any(p != q and p.is_relative_to(q) for q in found))


class Bubblewrap:
    """Wraps a child command in bwrap; checks at construction that bwrap works here. `home`:
    the data directory, hidden from every sandbox; the sandbox's passwd and group are kept
    there."""

    def __init__(self, binary: str = "bwrap", home: Path | None = None) -> None:
        path = shutil.which(binary)
        if path is None:
            raise ConfigurationError(
                f"tools = 'bubblewrap' needs the {binary!r} program, which is not on PATH: "
                "install Debian's `bubblewrap` package, or set tools = 'local'"
            )
        self.binary = path
        self._view = [*_system(), *self._accounts(home), *_KERNEL]
        code = _code()
        self._view += [arg for p in code for arg in ("--ro-bind", str(p), str(p))]
        if home is not None:  # where an import path entry holds it (a checkout's .tether/)
            hidden = {home.absolute(), home.resolve()}
            self._view += [
                arg for h in sorted(hidden) if any(h.is_relative_to(p) for p in code)
                for arg in ("--tmpfs", str(h))
            ]  # fmt: skip
        probe = [path, *self._options(None, network=False), "--", "true"]
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConfigurationError(f"bubblewrap ({path}) cannot start: {e}") from e
        if done.returncode != 0:
            raise ConfigurationError(
                f"bubblewrap ({path}) cannot create namespaces here: {done.stderr.strip()} "
                "(unprivileged user namespaces may be disabled); set tools = 'local'"
            )
        self._spares = _Spares(self)

    @staticmethod
    def _accounts(home: Path | None) -> list[str]:
        """A passwd and group naming only root and nobody, not the host's accounts."""
        if home is None:
            return []
        etc = home / "tools" / "sandbox-etc"
        etc.mkdir(parents=True, exist_ok=True)
        view = []
        for name, text in (("passwd", _PASSWD), ("group", _GROUP)):
            file = etc / name
            if not file.exists() or file.read_text() != text:
                file.write_text(text)
            view += ["--ro-bind", str(file), f"/etc/{name}"]
        return view

    def _options(self, workdir: Path | None, network: bool) -> list[str]:
        own = [] if workdir is None else [
            "--bind", str(workdir), str(workdir), "--chdir", str(workdir),
        ]  # fmt: skip
        return [
            "--unshare-all", "--unshare-user", *(["--share-net"] if network else []),
            "--uid", str(_NOBODY), "--gid", str(_NOBODY), "--cap-drop", "ALL",
            "--die-with-parent", *self._view, *own,
        ]  # fmt: skip

    def __call__(self, argv: Sequence[str], workdir: Path, network: bool) -> list[str]:
        return [self.binary, *self._options(workdir, network), "--", *argv]

    async def run(self, invocation: ToolInvocation, workdir: Path, forks: ForkServer) -> LaneResult:
        return await self._call(self._build(workdir, invocation.tool.network), invocation, forks)

    async def run_throwaway(self, invocation: ToolInvocation, forks: ForkServer) -> LaneResult:
        network = invocation.tool.network
        sandbox = self._spares.take(network)
        if sandbox is None or sandbox.proc.poll() is not None:
            if sandbox is not None:  # it died waiting (with the thread that started it, say)
                sandbox.destroy()
            sandbox = self._throwaway(network)
        try:
            return await self._call(sandbox, invocation, forks)
        finally:
            # after the call, not beside it: on a busy host a build alongside slowed the call
            # by more than it saved; and after the caller has its answer, not before
            asyncio.get_running_loop().call_soon(self._spares.refill, network, self._throwaway)

    def close(self) -> None:
        self._spares.close()

    def _build(self, workdir: Path, network: bool, throwaway: bool = False) -> _Sandbox:
        return _Sandbox([self.binary, *self._options(workdir, network)], workdir, throwaway)

    def _throwaway(self, network: bool) -> _Sandbox:
        return self._build(Path(tempfile.mkdtemp(prefix="tether-tool-")), network, True)

    @staticmethod
    async def _call(sandbox: _Sandbox, invocation: ToolInvocation, forks: ForkServer) -> LaneResult:
        timeout = invocation.tool.timeout
        try:
            try:
                holder = await sandbox.holder(timeout)
            except TimeoutError:
                return LaneResult(failure=timeout_failure(timeout))
            if holder is None:  # bwrap could not build the sandbox; it said why on stderr
                return LaneResult(failure=exit_failure(sandbox.proc.wait(STOP_GRACE), 0))
            return await forks.call(invocation, sandbox.workdir, enter=holder)
        finally:
            sandbox.destroy()


class _Sandbox:
    """One sandbox bwrap builds around a placeholder: `cat`, which echoes the line written to
    it once the sandbox is ready. Its bwrap leads a process group of its own, which a kill
    ends with everything in the sandbox."""

    def __init__(self, argv: list[str], workdir: Path, throwaway: bool) -> None:
        self.workdir, self._throwaway = workdir, throwaway
        self._info, info_w = os.pipe()  # bwrap writes the placeholder's pid here
        try:
            self.proc = subprocess.Popen(
                [*argv, "--info-fd", str(info_w), "--", "cat"], pass_fds=(info_w,),
                start_new_session=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
        except BaseException:
            os.close(self._info)
            if throwaway:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            os.close(info_w)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"ready\n")
        self.proc.stdin.flush()
        os.set_blocking(self.proc.stdout.fileno(), False)

    async def holder(self, timeout: float) -> int | None:
        """The placeholder's pid once the sandbox is ready, or None if bwrap ended first."""
        assert self.proc.stdout is not None
        ready = self.proc.stdout.fileno()
        try:
            line = os.read(ready, 64)
        except BlockingIOError:
            loop = asyncio.get_running_loop()
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(ready, _settle, readable)
            try:
                await asyncio.wait_for(readable, timeout)
            finally:
                loop.remove_reader(ready)
            line = os.read(ready, 64)
        if not line:
            return None
        return int(json.loads(os.read(self._info, 64 * 1024))["child-pid"])

    def destroy(self) -> None:
        """Kill the sandbox and all left in it; remove its directory if it was a throwaway."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self._info)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        if self._throwaway:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _settle(future: asyncio.Future[None]) -> None:
    """A reader's callback may fire again before it is removed."""
    if not future.done():
        future.set_result(None)


class _Spares:
    """The sandbox built ahead for the next throwaway call, one per network setting. Torn
    down by `close`, or when the `Bubblewrap` holding it is collected; never in a process
    forked from the one that built it, whose sandboxes they are not."""

    def __init__(self, owner: object) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._ready: dict[bool, _Sandbox] = {}
        self._closed = False
        self._closer = weakref.finalize(owner, self.close)

    def take(self, network: bool) -> _Sandbox | None:
        """The one built ahead for `network`, if any."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._ready = os.getpid(), {}
            return self._ready.pop(network, None)

    def refill(self, network: bool, build: Callable[[bool], _Sandbox]) -> None:
        """Start building the next one for `network`, unless one is there already or the
        lanes have closed (a call that ended as they closed asks for one after)."""
        with self._lock:
            if network not in self._ready and self._pid == os.getpid() and not self._closed:
                self._ready[network] = build(network)

    def close(self) -> None:
        with self._lock:
            spares = list(self._ready.values()) if self._pid == os.getpid() else []
            self._ready, self._closed = {}, True
        for spare in spares:
            spare.destroy()


class BubblewrapLanes(LocalLanes):
    """`tools = "bubblewrap"`: the same three lanes as `local`, isolated."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, sandbox=Bubblewrap(home=data_dir))

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> BubblewrapLanes:
        return cls(settings.ensure_data_dir(), **options)
