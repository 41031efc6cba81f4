"""One running child process and the request/reply exchange with it (parent side).

Runs in the trusted parent. A reply is data: it is checked against the request id, decoded
with the wire's caps, and a missing, late or malformed reply is a failure of that request,
never a success. The child's stderr is drained (capped) so it can never block on a full pipe.
"""

from __future__ import annotations

import array
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import SandboxUnavailable
from . import wire
from .launcher import Launch, Launcher, kill_group

STDERR_CAP = 64 * 1024


class ChildGone(Exception):
    """The child died or was killed; ``reason`` says how, for the student."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class ZygoteError(Exception):
    """The zygote did not do what was asked (it died, hung or refused)."""


class Zygote:
    """The parent's side of a zygote (``zygote.py``): a bubblewrap sandbox with NumPy (and
    maybe SymPy: ``preload``) imported, which forks a fresh child in namespaces of its own per
    submission.

    One per launcher in a batch worker. It never runs student code and nothing it sends is
    believed beyond "started", "ended with this status".
    """

    def __init__(self, launcher: Launcher, preload: Sequence[str], *, quiet: bool = False) -> None:
        """Start it (it imports in the background; the first spawn waits for it).

        ``quiet``: its stderr goes to /dev/null instead of a pipe read by a thread (for the
        warm server, which must stay single-threaded to fork).
        """
        self.limits = launcher.limits
        self.adopted = False
        self.ready = False  # it said it has imported everything
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            launch = launcher.build_zygote(theirs.fileno(), preload)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        try:
            self.proc = _start(launch, stderr=subprocess.DEVNULL if quiet else subprocess.PIPE)
        except SandboxUnavailable:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.proc.pid
        self.sock = ours
        self.stderr = bytearray()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        if self.proc.stderr is not None:
            threading.Thread(
                target=_drain, args=(self.proc.stderr.fileno(), self.stderr), daemon=True
            ).start()

    @property
    def alive(self) -> bool:
        if self.sock.fileno() < 0:
            return False
        if not self.adopted:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)  # not our child: its parent (the warm server) reaps it
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def adopt(self) -> None:
        """Take over a zygote started by the process this one was forked from.

        Only the new owner may use it; its starter must ``release`` its copy.
        """
        self.adopted = True
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give up this process's copy of a zygote adopted elsewhere, without stopping it."""
        self.sock.close()

    def is_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds (0: not at all) for the zygote's imports to finish."""
        with self._lock:
            if self.ready:
                return True
            try:
                self.sock.settimeout(timeout)
                data = self.sock.recv(4096)
            except (BlockingIOError, TimeoutError):
                return False
            except OSError:
                self.close()
                return False
            if data != b'{"ready": true}':
                self.close()
                return False
            self.ready = True
            return True

    def spawn(self, fds: tuple[int, int, int], timeout: float) -> int:
        """Fork a child serving requests on fds[0], replies on fds[1], stderr to fds[2]."""
        cid = next(self._ids)
        self._call({"op": "spawn", "id": cid}, fds, timeout)
        return cid

    def kill(self, cid: int) -> dict[str, int] | None:
        status = self._call({"op": "kill", "id": cid}, (), 10.0).get("status")
        return status if isinstance(status, dict) else None

    def wait(self, cid: int, timeout: float) -> dict[str, int] | None:
        reply = self._call({"op": "wait", "id": cid, "timeout": timeout}, (), timeout + 5.0)
        status = reply.get("status")
        return status if isinstance(status, dict) else None

    def _call(self, message: dict[str, Any], fds: Sequence[int], timeout: float) -> dict[str, Any]:
        if not self.is_ready(timeout):
            self.close()
            raise ZygoteError("the zygote did not start in time")
        with self._lock:
            if not self.alive:
                raise ZygoteError("the zygote is not running")
            try:
                self.sock.settimeout(timeout)
                ancillary = []
                if fds:
                    payload = array.array("i", fds).tobytes()
                    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, payload)]
                self.sock.sendmsg([json.dumps(message).encode()], ancillary)
                data = self.sock.recv(4096)
            except OSError as exc:  # includes the timeout
                self.close()
                raise ZygoteError(f"the zygote did not answer ({exc})") from exc
        if not data:
            self.close()
            raise ZygoteError("the zygote ended: " + self.stderr.decode("utf-8", "replace")[-300:])
        try:
            reply = json.loads(data)
        except ValueError as exc:
            self.close()
            raise ZygoteError("the zygote sent an unreadable reply") from exc
        if not isinstance(reply, dict) or reply.get("id") != message["id"] or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else None
            raise ZygoteError(f"the zygote refused {message['op']}: {error}")
        return reply

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if not self.adopted:
            kill_group(self.proc)
            return
        try:  # whose child it is reaps it
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _start(launch: Launch, *, stderr: int) -> subprocess.Popen[bytes]:
    """Start what ``launch`` describes in a session of its own; its data fds are closed."""
    try:
        return subprocess.Popen(
            launch.argv,
            env=launch.env,
            pass_fds=launch.pass_fds,
            preexec_fn=launch.preexec,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    except OSError as exc:
        raise SandboxUnavailable(f"cannot start the sandbox: {exc}") from exc
    finally:
        for fd in launch.data_fds:
            os.close(fd)


def _drain(fd: int, into: bytearray, *, close: bool = False) -> None:
    """Read ``fd`` to its end, keeping the first STDERR_CAP bytes; then close it if asked.

    The descriptor is closed here, at its end, and nowhere else: closed by another thread, its
    number could be reused by a new pipe while this thread still reads from it.
    """
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            room = STDERR_CAP - len(into)
            if room > 0:
                into += chunk[:room]
    except OSError:
        return
    finally:
        if close:
            os.close(fd)


class ChildProcess:
    """A started child. Use ``request``; call ``close`` when done (kills it and all it started).

    Started directly under bubblewrap (or in process mode), or, given a ``zygote``, forked by
    it; both serve the same protocol.
    """

    def __init__(
        self,
        launcher: Launcher,
        *,
        init: dict[str, Any],
        timeout: float,
        zygote: Zygote | None = None,
    ) -> None:
        if zygote is not None:
            try:
                self._start(launcher, init, timeout, zygote)
                return
            except (ChildGone, ZygoteError):
                # The zygote, or a child it forked before any student code ran, failed: it is
                # unusable here (nested namespaces refused, say). Stopped, so that the factory
                # does not offer it again; this child starts directly.
                if hasattr(self, "reader"):
                    self.close()
                zygote.close()
        self._start(launcher, init, timeout, None)

    def _start(
        self, launcher: Launcher, init: dict[str, Any], timeout: float, zygote: Zygote | None
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.zygote: Zygote | None = None
        self.cid = 0
        self._status: int | None = None
        self.stderr = bytearray()
        self.closed = False
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        if zygote is not None:
            err_r, err_w = os.pipe()
            try:
                self.cid = zygote.spawn((req_r, rep_w, err_w), timeout)
            except ZygoteError:
                for fd in (req_r, req_w, rep_r, rep_w, err_r):
                    os.close(fd)
                raise
            finally:
                os.close(err_w)
            self.zygote = zygote
        else:
            try:
                self.proc = _start(launcher.build(req_r, rep_w), stderr=subprocess.PIPE)
            except SandboxUnavailable:
                for fd in (req_r, req_w, rep_r, rep_w):
                    os.close(fd)
                raise
            assert self.proc.stderr is not None
            err_r = os.dup(self.proc.stderr.fileno())
            self.proc.stderr.close()
        os.close(req_r)
        os.close(rep_w)
        self.fd_req = req_w
        self.reader = wire.RecordReader(rep_r)
        self._ids = itertools.count(1)
        self._drain = threading.Thread(
            target=_drain, args=(err_r, self.stderr), kwargs={"close": True}, daemon=True
        )
        self._drain.start()
        self.request(dict(init, op="init"), timeout=timeout)

    def request(
        self, header: dict[str, Any], blobs: list[bytes] | None = None, *, timeout: float
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request and wait for its reply; raise ChildGone on death or timeout."""
        if self.closed:
            raise ChildGone("the sandbox was already stopped")
        rid = next(self._ids)
        try:
            wire.write_record(self.fd_req, dict(header, id=rid), blobs)
        except (BrokenPipeError, OSError) as exc:
            reason = self._death_reason()  # before our own kill, which would mask it
            self.close()
            raise ChildGone(reason) from exc
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply, reply_blobs = self.reader.read(deadline)
            except wire.WireTimeout as exc:
                self.close()
                raise ChildGone(
                    f"no answer within {timeout:g} s (time limit)", timed_out=True
                ) from exc
            except wire.WireEOF as exc:
                reason = self._death_reason()
                self.close()
                raise ChildGone(reason) from exc
            except wire.WireError as exc:
                self.close()
                raise ChildGone(f"the submission's process sent invalid data ({exc})") from exc
            # A stale or forged reply for another request is discarded, not believed.
            if reply.get("id") == rid:
                return reply, reply_blobs

    def _wait(self, timeout: float) -> int | None:
        """The child's exit code (negative: killed by that signal), None if still running."""
        if self._status is not None:
            return self._status
        if self.proc is not None:
            try:
                self._status = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
            return self._status
        assert self.zygote is not None
        try:
            status = self.zygote.wait(self.cid, timeout)
        except ZygoteError:
            return None
        if status is not None:
            self._status = -status["signal"] if "signal" in status else status.get("exit", 0)
        return self._status

    def _death_reason(self) -> str:
        code = self._wait(2.0)
        if code is None:
            return "the submission's process stopped answering"
        if code < 0:
            import signal

            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f"the submission's process was killed by {name}"
        tail = self.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        extra = f" ({tail[0][:200]})" if tail else ""
        return f"the submission's process exited with code {code}{extra}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            os.close(self.fd_req)
        except OSError:
            pass
        if self.proc is not None:
            kill_group(self.proc)
        elif self.zygote is not None and self._status is None:
            try:
                self.zygote.kill(self.cid)
            except ZygoteError:
                self.zygote.close()  # its sandbox, and with it this child, is gone
        try:
            os.close(self.reader.fd)
        except OSError:
            pass
