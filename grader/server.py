"""The warm grading server: ``grade FILE`` without paying for the imports every time.

It works like ``dmypy`` or the Gradle daemon. A server process imports everything a grade
needs once (SymPy, pytest, Hypothesis, nbconvert and its compiled templates), then listens on
a Unix socket in a folder private to the user. For each ``grade FILE`` the client sends its
argv, working folder, umask and environment, and passes its stdin, stdout and stderr
(SCM_RIGHTS). The server forks a worker that takes all of these on and runs the ordinary
in-process CLI (``grader.cli.run``), which starts a fresh sandbox child for this one
submission; the server sends the worker's exit code back and the client exits with it.

With no server running, the client grades in-process as before and then starts one in the
background. ``GRADER_NO_SERVER=1`` or ``--no-server`` turns all of this off;
``GRADER_SERVER_DIR`` names the socket folder, ``GRADER_SERVER_IDLE`` the idle timeout in
seconds. ``python -m grader.server {start,status,stop}`` manages the server by hand.

This module holds what both sides share (the folder, the request format), the client and the
command line; the server process itself is ``server_daemon.py``.

This module never executes anything a client sends (argv only reaches the CLI parser), never
serves another user (a 0700 folder owned by the user, and SO_PEERCRED on every connection),
never forks while it has a thread, never grades in the server process itself nor reuses a
worker, and never outlives its idle timeout or a change to the installed grader.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import UsageError

__all__ = ["Refused", "grade_via_server", "main", "private_folder", "socket_path"]

ENV_DISABLE = "GRADER_NO_SERVER"
ENV_DIR = "GRADER_SERVER_DIR"
ENV_IDLE = "GRADER_SERVER_IDLE"
DEFAULT_IDLE = 600.0
PACKAGE = Path(__file__).resolve().parent
# Packages whose upgrade makes the server's imported code stale, besides the grader itself.
DEPENDENCIES = ("numpy", "sympy", "mpmath", "nbconvert", "nbformat", "jinja2", "pytest",
                "hypothesis", "mistune", "pygments", "snowballstemmer")  # fmt: skip
_MAGIC = b"GRD1"
_HEAD = struct.Struct("!4sI")
_MAX_REQUEST = 4 << 20
_GRACE = 3.0  # seconds from SIGINT to SIGKILL for a worker whose client was interrupted
_START_WAIT = 60.0  # how long a client waits for a busy or warming server to take its request
_MAX_LOG = 256 * 1024


class Refused(Exception):
    """The socket folder is not private to this user, so no server is used."""


# --- where the server lives --------------------------------------------------------------------


def private_folder() -> Path:
    """The socket folder, created 0700; raises Refused if it is not the user's alone."""
    explicit = os.environ.get(ENV_DIR)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if explicit:
        folder = Path(explicit)
    elif runtime and os.path.isabs(runtime):
        folder = Path(runtime) / "grader"
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(cache) / "grader" / "server"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError as exc:
        raise Refused(f"cannot create the server folder {folder}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"the server folder {folder} is not a folder")
    if st.st_uid != os.geteuid():
        raise Refused(
            f"the server folder {folder} belongs to uid {st.st_uid}, not to you "
            f"(uid {os.geteuid()})"
        )
    if st.st_mode & 0o077:
        raise Refused(
            f"the server folder {folder} is open to other users "
            f"(mode {stat.S_IMODE(st.st_mode):o}); `chmod 700` it"
        )
    return folder


def identity() -> str:
    """What one server serves: this user, this grader installation, this Python."""
    python = os.path.realpath(sys.executable)
    return f"uid={os.geteuid()} grader={PACKAGE} python={python} {sys.version}"


def socket_path(folder: Path) -> Path:
    """The socket of this identity's server in ``folder``."""
    digest = hashlib.sha256(identity().encode()).hexdigest()[:16]
    return folder / f"grade-{digest}.sock"


def fingerprint() -> str:
    """Changes when a file of the grader, a dependency's package or the Python binary does."""
    from importlib.util import find_spec

    h = hashlib.sha256(identity().encode())
    files = [p for p in PACKAGE.rglob("*") if "__pycache__" not in p.parts]
    files.append(Path(os.path.realpath(sys.executable)))
    for name in DEPENDENCIES:
        spec = find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    for path in sorted(files):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


# --- the wire: one request (with fds) from the client, JSON lines back ---------------------------


def _send_request(sock: socket.socket, request: dict[str, Any], fds: Sequence[int] = ()) -> None:
    body = json.dumps(request).encode()
    data = _HEAD.pack(_MAGIC, len(body)) + body
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):  # (an empty send to a server that already answered would fail)
        sock.sendall(data[sent:])


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request and the fds that came with it; ValueError if it is malformed."""
    data, fds, flags, _ = socket.recv_fds(conn, 65536, 3)
    try:
        if flags & socket.MSG_CTRUNC:
            raise ValueError("passed fds were truncated")
        if len(data) < _HEAD.size or data[:4] != _MAGIC:
            raise ValueError("not a grader request")
        _, size = _HEAD.unpack_from(data)
        if size > _MAX_REQUEST:
            raise ValueError(f"request of {size} bytes is too large")
        while len(data) < _HEAD.size + size:
            more = conn.recv(_HEAD.size + size - len(data))
            if not more:
                raise ValueError("request cut short")
            data += more
        request = json.loads(data[_HEAD.size :])
        if not isinstance(request, dict) or request.get("op") not in ("grade", "status", "stop"):
            raise ValueError("unknown request")
        if request["op"] == "grade":
            _validate_grade(request, fds)
        return request, fds
    except (ValueError, struct.error) as exc:
        for fd in fds:
            os.close(fd)
        raise ValueError(str(exc)) from exc


def _validate_grade(request: dict[str, Any], fds: list[int]) -> None:
    argv, env, umask = request.get("argv"), request.get("env"), request.get("umask")
    if len(fds) != 3:
        raise ValueError(f"{len(fds)} fds passed, 3 needed")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a list of strings")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("env must map strings to strings")
    if not isinstance(request.get("cwd"), str) or not isinstance(umask, int):
        raise ValueError("cwd and umask are missing")
    if not 0 <= umask <= 0o777:
        raise ValueError(f"umask {umask} out of range")
    if not isinstance(request.get("dont_write_bytecode"), bool):
        raise ValueError("dont_write_bytecode must be true or false")
    stdio = request.get("stdio")
    if not (
        isinstance(stdio, list)
        and len(stdio) == 3
        and all(
            isinstance(s, list) and len(s) == 4 and [type(v) for v in s] == [str, str, bool, bool]
            for s in stdio
        )
    ):
        raise ValueError("stdio must be three [encoding, errors, line_buffering, write_through]")


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the client went away; nobody is left to tell


class _Lines:
    """JSON objects, one per line, read from a socket; None at end of stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        return message if isinstance(message, dict) else {}


# --- the client ------------------------------------------------------------------------------


def disabled(argv: Sequence[str]) -> bool:
    """``GRADER_NO_SERVER`` or ``--no-server`` (argparse accepts its unambiguous prefixes)."""
    if os.environ.get(ENV_DISABLE, "") not in ("", "0") or not hasattr(socket, "SO_PEERCRED"):
        return True  # (without SO_PEERCRED, Linux's, the peer's user cannot be checked)
    for arg in argv:
        if arg == "--":
            break
        if len(arg) >= len("--no-se") and "--no-server".startswith(arg):
            return True
    return False


def idle_timeout() -> float:
    """Seconds a server waits for work before it exits: ``GRADER_SERVER_IDLE`` or 10 minutes."""
    raw = os.environ.get(ENV_IDLE, "")
    if not raw:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(f"{ENV_IDLE}={raw!r} must be a positive number of seconds")
    return value


def grade_via_server(argv: list[str], run: Callable[[list[str]], int]) -> int:
    """Grade through the warm server if one answers; else ``run(argv)`` here and start one."""
    real_stdio = sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__
    if disabled(argv) or not real_stdio:
        return run(argv)
    try:
        idle = idle_timeout()
        path = socket_path(private_folder())
    except Refused as exc:
        print(f"grade: warning: {exc}; grading without the server", file=sys.stderr)
        return run(argv)
    except UsageError as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return 2
    try:
        code, start = _ask(path, argv)
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130
    if code is not None:
        return code
    code = run(argv)
    if start and code != 130:  # not after a Ctrl-C
        _start_server(path, idle)
    return code


def _ask(path: Path, argv: list[str]) -> tuple[int | None, bool]:
    """(exit code, False) when the server graded; (None, start a server?) when it did not."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None, True
        except OSError:
            return None, False  # e.g. a path too long for a socket: grade here, quietly
        try:
            for fd in (0, 1, 2):
                os.fstat(fd)
            cwd = os.getcwd()
        except OSError:
            return None, False
        if _peer_uid(sock) != os.geteuid():
            return None, False
        umask = os.umask(0o022)
        os.umask(umask)
        streams = (sys.stdin, sys.stdout, sys.stderr)
        request = {
            "op": "grade",
            "identity": identity(),
            "argv": argv,
            "cwd": cwd,
            "env": dict(os.environ),
            "umask": umask,
            "dont_write_bytecode": sys.dont_write_bytecode,  # -B or PYTHONDONTWRITEBYTECODE
            "stdio": [
                [
                    getattr(s, "encoding", None) or "utf-8",
                    getattr(s, "errors", None) or "strict",
                    bool(getattr(s, "line_buffering", False)),
                    bool(getattr(s, "write_through", False)),
                ]
                for s in streams
            ],
        }
        sock.settimeout(_START_WAIT)
        _send_request(sock, request, (0, 1, 2))
        return _await(sock)
    except (OSError, ValueError):
        return None, True  # nothing started: the server died or hung before our turn
    finally:
        sock.close()


def _await(sock: socket.socket) -> tuple[int | None, bool]:
    lines = _Lines(sock)
    started = interrupted = False
    while True:
        try:
            message = lines.next()
        except KeyboardInterrupt:
            if not started or interrupted:
                raise  # closing the socket tells the server to drop or kill the worker
            sock.sendall(b"I")  # the server interrupts the worker; its exit code follows
            interrupted = True
            continue
        except (OSError, ValueError):
            if not started:
                raise
            message = None
        if message is None:
            if not started:
                return None, True
            print("grade: internal error: the grading server went away", file=sys.stderr)
            return 3, False
        if "started" in message:
            started = True
            sock.settimeout(None)
        elif "fallback" in message:
            return None, True
        elif "exit" in message:
            if message.get("message"):
                print(message["message"], file=sys.stderr)
            return int(message["exit"]), False


def _start_server(path: Path, idle: float) -> None:
    """Start a server in the background: its own session, stdio on /dev/null, cwd /."""
    import subprocess

    # -P: no folder of the client's is put on sys.path; the grader's own root is, by name.
    boot = (
        "import sys; root = sys.argv[1]; root in sys.path or sys.path.insert(0, root); "
        "from grader.server import main; sys.exit(main(sys.argv[2:]))"
    )
    argv = [sys.executable, "-P", "-c", boot, str(PACKAGE.parent), "serve", "--detach",
            "--socket", str(path), "--idle", repr(idle)]  # fmt: skip
    try:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    except OSError:
        pass  # no server this time; the next run tries again


# --- by hand: python -m grader.server ---------------------------------------------------------


def _ask_op(path: Path, op: str) -> dict[str, Any] | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(_START_WAIT)
    try:
        sock.connect(str(path))
        if _peer_uid(sock) != os.geteuid():
            return None
        _send_request(sock, {"op": op})
        return _Lines(sock).next()
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def _stop(path: Path) -> None:
    _ask_op(path, "stop")
    deadline = time.monotonic() + _START_WAIT
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grader.server start|status|stop``; ``serve`` is how a server is started."""
    parser = argparse.ArgumentParser(
        prog="python -m grader.server", description="The warm server behind `grade FILE`."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server (if none runs) and wait until it answers")
    start.add_argument("--timeout", type=float, default=_START_WAIT)
    sub.add_parser("status", help="print the running server's state; exit 1 if none runs")
    sub.add_parser("stop", help="stop the server once its running grades are done")
    serve = sub.add_parser("serve", help="run the server in this process")
    serve.add_argument("--socket", required=True)
    serve.add_argument("--idle", type=float, default=DEFAULT_IDLE)
    serve.add_argument("--detach", action="store_true", help="fork into the background first")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.detach and os.fork() > 0:
            os._exit(0)  # the second fork: the server is no session leader, and no one's child
        from .server_daemon import Server

        return Server(Path(args.socket), idle=args.idle, log_file=args.detach).run()
    try:
        path = socket_path(private_folder())
        idle = idle_timeout()
    except (Refused, UsageError) as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return 2
    state = _ask_op(path, "status")
    if args.command == "start" and state is not None and state.get("fingerprint") != fingerprint():
        _stop(path)  # it would only hand the first grade back and exit
        state = None
    if args.command == "start":
        if state is None:
            _start_server(path, idle)
            deadline = time.monotonic() + args.timeout
            while state is None and time.monotonic() < deadline:
                time.sleep(0.05)
                state = _ask_op(path, "status")
    elif args.command == "stop" and state is not None:
        _stop(path)
    print(json.dumps(state or {"running": False}))
    return 0 if state is not None else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
