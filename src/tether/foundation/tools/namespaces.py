"""Entering a sandbox from a forked child: how a bubblewrap call skips the interpreter start.

bwrap builds the sandbox (namespaces, read-only root, private /tmp and /dev, the call's
directory bound writable) around a placeholder process; a child forked from the template then
joins every namespace of that process it does not share, drops every capability (joining a
user namespace grants all of them in it, which would let the tool remount the root
writable), and forks once more so the tool runs inside the sandbox's pid namespace too. The
outer process waits and exits as the tool did, reporting a signal as 128 + signum, as bwrap
itself does. Linux only, as bwrap is.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

# linux/sched.h, in the order setns(2) must take them: the user namespace last. bwrap mounts
# as root of one user namespace and runs the sandbox as nobody in a second, nested one; the
# nested one holds no rights over the mounts, so they are joined first, with the host root's
# rights, and the user namespace the tool runs in after them.
_NAMESPACES = {
    "mnt": 0x00020000,
    "net": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "pid": 0x20000000,
    "cgroup": 0x02000000,
    "user": 0x10000000,
}
# linux/prctl.h and linux/capability.h
_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _drop_capabilities(libc: ctypes.CDLL) -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        _check(libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "dropping a bounding capability")
    _check(libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient")
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: none, twice 32 bits
    _check(libc.capset(header, data), "capset")
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def enter(pid: int) -> None:
    """Move this (single-threaded) process into `pid`'s sandbox. Returns in a new child that
    is inside it; this process waits for that child and exits with it."""
    libc = ctypes.CDLL(None, use_errno=True)
    # Open them all first: once in the sandbox's mount namespace, /proc is the sandbox's.
    joining = [
        (name, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY))
        for name in _NAMESPACES
        if os.stat(f"/proc/{pid}/ns/{name}").st_ino != os.stat(f"/proc/self/ns/{name}").st_ino
    ]
    try:
        for name, fd in joining:
            _check(libc.setns(fd, _NAMESPACES[name]), f"joining the sandbox's {name} namespace")
    finally:
        for _, fd in joining:
            os.close(fd)
    _drop_capabilities(libc)
    inside = os.fork()
    if inside == 0:
        # Dies with this process; a parent outside the pid namespace reads as pid 0, so the
        # tie cannot be checked, but the whole namespace dies with bwrap anyway.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    _, status = os.waitpid(inside, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)
