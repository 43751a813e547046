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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.tools.contract import LaneResult, ToolInvocation
from tether.foundation.tools.forkserver import ForkServer
from tether.foundation.tools.local import LocalLanes
from tether.foundation.tools.process import exit_failure, timeout_failure

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
        tool = invocation.tool
        info, info_w = os.pipe()  # bwrap writes the placeholder's pid here
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary, *self._options(workdir, tool.network), "--info-fd", str(info_w),
                "--", "cat", pass_fds=(info_w,), start_new_session=True,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
        finally:
            os.close(info_w)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"ready\n")
            try:
                ready = await asyncio.wait_for(proc.stdout.readline(), tool.timeout)
            except TimeoutError:
                return LaneResult(failure=timeout_failure(tool.timeout))
            if not ready:  # bwrap could not build the sandbox; it said why on stderr
                return LaneResult(failure=exit_failure(await proc.wait(), 0))
            holder = json.loads(os.read(info, 64 * 1024))["child-pid"]
            return await forks.call(invocation, workdir, enter=holder)
        finally:
            os.close(info)
            with contextlib.suppress(ProcessLookupError):  # the sandbox, and all left in it
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class BubblewrapLanes(LocalLanes):
    """`tools = "bubblewrap"`: the same three lanes as `local`, isolated."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, sandbox=Bubblewrap(home=data_dir))

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> BubblewrapLanes:
        return cls(settings.ensure_data_dir(), **options)
