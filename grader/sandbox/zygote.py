"""The zygote: a pre-imported process inside bubblewrap that forks one fresh child per request.

Runs inside the sandbox (started by ``Zygote`` in ``process.py``), as the unprivileged sandbox
user, and never runs student code itself. Starting Python and importing NumPy (and SymPy, when
the submissions use it: see ``launcher.zygote_preload``) costs more than grading a typical
submission; the zygote pays it once per batch worker, and every submission's child is a fork of
it.

A fork would share the zygote's sandbox with every earlier and later child, so each child is
forked straight into namespaces of its own (``clone(2)`` with the namespace flags, in one step)
before anything of the student's runs:

- a new user namespace (the same unprivileged user, mapped 1:1), which allows the rest;
- a new PID namespace, in which the child is PID 1: it cannot see or signal the zygote or any
  other submission's process, and when it dies the kernel kills everything it started;
- a new mount namespace with a fresh tmpfs on ``/tmp`` (nothing written by one submission is
  seen by the next) and a ``/proc`` of its own PID namespace;
- new IPC and network namespaces (no System V objects or abstract sockets in common).

Then the child drops every capability that the user namespace gave it, loads the same seccomp
filter that bubblewrap loads for a directly started child (no mounts, namespaces, ptrace, …),
and serves the grader exactly like a directly started child (``child.py``).

Control protocol, over a ``SOCK_SEQPACKET`` socket to the grader: ``{"ready": true}`` once the
imports are done, then one JSON message each way. ``{"op": "spawn", "id": n}`` with three
descriptors (requests in, replies out, stderr) → ``{"id": n, "ok": true}``;
``{"op": "kill", "id": n}`` → ``{"id": n, "status": …}``; ``{"op": "wait", "id": n,
"timeout": s}`` → ``{"id": n, "status": …}`` or ``null`` if still running. A status is
``{"exit": code}`` or ``{"signal": number}``.
"""

from __future__ import annotations

import array
import ctypes
import errno
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

try:  # in the parent's package (tests) ...
    from . import seccomp
except ImportError:  # ... and inside the sandbox, where this folder is on sys.path
    import seccomp  # type: ignore[import-not-found,no-redef,unused-ignore]

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CHILD_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
LINUX_CAPABILITY_VERSION_3 = 0x20080522
MAX_MESSAGE = 4096

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
# Called with the GIL held (a PyDLL), as os.fork calls fork(2).
_syscall = ctypes.PyDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class Zygote:
    def __init__(self, ctl_fd: int, filter_path: str, tmpfs_bytes: int) -> None:
        self.sock = socket.socket(fileno=ctl_fd)
        with open(filter_path, "rb") as f:
            # Prepared here, once: a child only makes the two prctl calls.
            self.load_filter = seccomp.installer(f.read())
        self.tmpfs_bytes = tmpfs_bytes
        self.uid, self.gid = os.getuid(), os.getgid()
        # id -> (pid, a pidfd of it or -1, the write end of its life pipe)
        self.children: dict[int, tuple[int, int, int]] = {}

    # --- control loop -------------------------------------------------------------------------

    def serve(self) -> None:
        self.sock.sendmsg([json.dumps({"ready": True}).encode()])  # everything is imported
        while True:
            fds = array.array("i")
            try:
                data, ancdata, _, _ = self.sock.recvmsg(
                    MAX_MESSAGE, socket.CMSG_LEN(3 * fds.itemsize)
                )
            except InterruptedError:
                continue
            if not data:
                return  # the grader closed its end: the batch is over
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % fds.itemsize
                    fds.frombytes(payload[:usable])
            try:
                request = json.loads(data)
                reply = self.handle(request, list(fds))
            except Exception as exc:  # a bad request costs that request, not the zygote
                reply = {"id": None, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            finally:
                for fd in fds:
                    os.close(fd)
            self.sock.sendmsg([json.dumps(reply).encode()])

    def handle(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        op, cid = request.get("op"), int(request["id"])
        if op == "spawn":
            if len(fds) != 3 or cid in self.children:
                raise ValueError("spawn needs three descriptors and a new id")
            self.children[cid] = self.spawn(*fds)
            return {"id": cid, "ok": True}
        if op == "kill":
            return {"id": cid, "ok": True, "status": self.kill(cid)}
        if op == "wait":
            return {"id": cid, "ok": True, "status": self.wait(cid, float(request["timeout"]))}
        raise ValueError(f"unknown op {op!r}")

    # --- children -----------------------------------------------------------------------------

    def spawn(self, fd_in: int, fd_out: int, fd_err: int) -> tuple[int, int, int]:
        # The life pipe tells a child whether this process died before its death signal was
        # armed (the read end sees end-of-file once every write end is closed).
        life_r, life_w = os.pipe()
        try:
            pid = _clone(CHILD_NAMESPACES)
        except BaseException:
            os.close(life_r)
            os.close(life_w)
            raise  # e.g. no nested namespaces here: the grader starts its children directly
        if pid == 0:
            try:
                self.sock.detach()  # its descriptor is closed below, with all the others
                os.close(life_w)
                _child(self, fd_in, fd_out, fd_err, life_r)
            except BaseException as exc:
                try:
                    os.write(fd_err, f"the sandbox child could not start: {exc}\n".encode())
                finally:
                    os._exit(126)
            os._exit(0)
        os.close(life_r)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1  # an old kernel: waits poll instead
        return pid, pidfd, life_w

    def kill(self, cid: int) -> dict[str, int] | None:
        pid = self.children[cid][0]
        try:
            # PID 1 of its namespace: every process the student started dies with it.
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait(cid, 5.0)

    def wait(self, cid: int, timeout: float) -> dict[str, int] | None:
        """The child's status once it has ended, or None if it is still running."""
        pid, pidfd, life_w = self.children[cid]
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if pidfd >= 0:
                select.select([pidfd], [], [], left)  # readable once the child has ended
            else:
                time.sleep(min(left, 0.005))
        for fd in (pidfd, life_w):
            if fd >= 0:
                os.close(fd)
        del self.children[cid]
        if os.WIFSIGNALED(code):
            return {"signal": os.WTERMSIG(code)}
        return {"exit": os.WEXITSTATUS(code)}


def _clone(flags: int) -> int:
    """``os.fork()``, into new namespaces: clone(2) with ``flags``; 0 in the child.

    One fork instead of two (a fork, ``unshare``, and a fork again, since a new PID namespace
    only takes the children of the process that makes it): forking the zygote, with NumPy and
    SymPy in its memory, is most of what a child costs. Python is told of the fork exactly as
    ``os.fork`` tells it. The zygote has a single thread, and its BLAS runs none of its own.
    """
    number = SYS_CLONE.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"clone: no system call number for {os.uname().machine}")
    ctypes.pythonapi.PyOS_BeforeFork()
    # clone(flags, stack, parent_tid, child_tid, tls): no new stack, as fork(2).
    pid = _syscall(
        ctypes.c_long(number), ctypes.c_ulong(flags | signal.SIGCHLD), None, None, None, None
    )
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return int(pid)


def _child(z: Zygote, fd_in: int, fd_out: int, fd_err: int, life_r: int) -> None:
    """PID 1 of fresh namespaces: the same user, private /tmp and /proc, no capabilities, the
    filter; then serve."""
    _check(_prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if select.select([life_r], [], [], 0)[0]:
        os._exit(0)  # the zygote died before the death signal was armed
    # The unprivileged sandbox user, mapped to itself (a process may map its own ids).
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{z.uid} {z.uid} 1"),
        ("gid_map", f"{z.gid} {z.gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    os.close(life_r)
    # A session and process group of its own: kill(0, …) and friends address a process group
    # by its global id, across PID namespaces, and the zygote's group is the one inherited.
    os.setsid()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={z.tmpfs_bytes},mode=1777")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir("/tmp")
    os.dup2(fd_err, 2)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    _close_all_but({fd_in, fd_out})
    _drop_capabilities()
    z.load_filter()  # the same loader as a process-mode child's (seccomp.installer)
    _reseed()
    import child  # bound next to this file in the sandbox

    child.main([str(fd_in), str(fd_out)])


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above 2 except ``keep``."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _drop_capabilities() -> None:
    """Clear the bounding, effective, permitted and inheritable sets the user namespace gave."""
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    machine = os.uname().machine
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(SYS_CAPSET[machine], header, data), "capset")


def _reseed() -> None:
    """Fresh random state, as a newly started process would have (not the zygote's copy)."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def main(argv: list[str]) -> int:
    ctl_fd, filter_path, tmpfs_bytes = int(argv[0]), argv[1], int(argv[2])
    for name in argv[3:]:
        try:
            __import__(name)
        except ImportError:
            pass  # not installed: the children import what they need themselves
    import child  # noqa: F401  (bound next to this file; imported once, here)

    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    Zygote(ctl_fd, filter_path, tmpfs_bytes).serve()
    return 0
