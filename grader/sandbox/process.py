"""One running child process and the request/reply exchange with it (parent side).

Runs in the trusted parent. A reply is data: it is checked against the request id, decoded
with the wire's caps, and a missing, late or malformed reply is a failure of that request,
never a success. The child's stderr is drained (capped) so it can never block on a full pipe.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from typing import Any

from ..errors import SandboxUnavailable
from . import wire
from .launcher import Launcher, kill_group

STDERR_CAP = 64 * 1024


class ChildGone(Exception):
    """The child died or was killed; ``reason`` says how, for the student."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class ChildProcess:
    """A started child. Use ``request``; call ``close`` when done (kills the whole group)."""

    def __init__(self, launcher: Launcher, *, init: dict[str, Any], timeout: float) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        launch = launcher.build(req_r, rep_w)
        try:
            self.proc = subprocess.Popen(
                launch.argv,
                env=launch.env,
                pass_fds=launch.pass_fds,
                preexec_fn=launch.preexec,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start the sandbox: {exc}") from exc
        finally:
            for fd in (req_r, rep_w, *launch.data_fds):
                os.close(fd)
        self.fd_req = req_w
        self.reader = wire.RecordReader(rep_r)
        self._ids = itertools.count(1)
        self.stderr = bytearray()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        self.closed = False
        self.request(dict(init, op="init"), timeout=timeout)

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        while True:
            try:
                chunk = stream.read1(65536)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return
            if not chunk:
                return
            room = STDERR_CAP - len(self.stderr)
            if room > 0:
                self.stderr += chunk[:room]

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

    def _death_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
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
        kill_group(self.proc)
        try:
            os.close(self.reader.fd)
        except OSError:
            pass
        if self.proc.stderr is not None:
            self.proc.stderr.close()
