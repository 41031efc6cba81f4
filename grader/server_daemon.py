"""The warm grading server's own side: warm up, accept, fork a worker per grade, reap.

The client side, the socket folder, the request format and ``python -m grader.server`` live in
``server.py``, whose docstring describes the whole; this module is imported only by a server
process (``python -m grader.server serve``).
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["Server", "warm_up"]

from .server import (
    _GRACE,
    _MAX_LOG,
    DEFAULT_IDLE,
    _peer_uid,
    _read_request,
    _reply,
    fingerprint,
    identity,
)

# What a grade imports, loaded once in the server so that no worker pays for it again. Of the
# grader's own modules only those a grade loads before its checks run: Hypothesis draws
# "local constants" from every loaded module outside site-packages (the grader too, when it
# is installed editable), so one more module here could change the examples it draws.
WARM_MODULES = (
    "numpy", "numpy.random", "sympy", "sympy.combinatorics", "sympy.sets.setexpr",
    "sympy.tensor.tensor", "nbformat", "pytest", "_pytest._argcomplete", "hypothesis",
    "hypothesis.internal.conjecture.optimiser", "mistune.plugins.def_list",
    "mistune.plugins.task_lists", "mistune.plugins.url", "pygments.styles.default",
    "xml.dom.minidom", "secrets", "encodings.unicode_escape",
    "grader.cli", "grader.grading", "grader.engine", "grader.answers", "grader.checks.math",
    "grader.checks.text", "grader.report.html",
)  # fmt: skip


def warm_up() -> list[str]:
    """Import what a grade needs and compile the report's templates; return what failed."""
    import importlib

    names = list(WARM_MODULES)
    try:
        from _pytest.config import default_plugins

        names += [f"_pytest.{name}" for name in default_plugins]
    except ImportError:
        pass
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # only a head start: a worker reports the error as before
            failed.append(f"import {name}: {exc!r}")
    try:
        from .report import cells
        from .report.html import prepare

        prepare()
        # First-use caches of the notebook cells' rendering (Pygments compiles ~100 regexes),
        # and the schema validator nbconvert compiles for the report's notebook (~0.1 s).
        for helper in ("_pygments", "_renderer_class"):
            getattr(cells, helper, lambda: None)()
        import nbformat

        get_validator: Any = nbformat.validator.get_validator  # untyped
        get_validator(4, nbformat.v4.nbformat_minor, relax_add_props=True)  # nbconvert's
    except Exception as exc:
        failed.append(f"report templates: {exc!r}")
    try:
        # Hypothesis' first example collects the constants of every loaded "local" module (a
        # path lookup per module, a parse per local one), adding modules it has not seen yet.
        # Collected here, a worker only adds the check files: the same union, ~0.1 s sooner.
        # Its cache files go to ./.hypothesis, so the cwd is the private folder meanwhile.
        from hypothesis.internal.conjecture.providers import _get_local_constants
        from hypothesis.internal.constants_ast import is_local_module_file

        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                is_local_module_file(path)
        _get_local_constants()
    except Exception as exc:
        failed.append(f"hypothesis constants: {exc!r}")
    return failed


def _thread_count() -> int:
    """Threads of this process as the kernel sees them (native ones included)."""
    import threading

    try:
        return max(len(os.listdir("/proc/self/task")), threading.active_count())
    except OSError:
        return threading.active_count()


@dataclass
class _Job:
    conn: socket.socket
    listening: bool = True  # the client's end is watched for an interrupt or hang-up
    interrupted: bool = False
    kill_at: float | None = None


@dataclass
class Server:
    """One server: accept, fork a worker per grade, send back its exit code, stop when idle."""

    path: Path
    idle: float = DEFAULT_IDLE
    log_file: bool = False  # stderr to <socket>.log (a detached server's is /dev/null)
    jobs: dict[int, _Job] = field(default_factory=dict)
    closing: bool = False
    stop_requested: bool = False
    served: int = 0
    spare: Any = None  # a Zygote for the next grade's sandbox (sandbox/zygote.py)
    launcher: Any = None  # what starts the spares; built once
    spares_started: int = 0

    def run(self) -> int:
        """Serve until idle or stale; 0 also when another server already holds the socket."""
        import gc
        import selectors

        for fd in (0, 1, 2):  # so that no fd a client passes can land on 0, 1 or 2
            try:
                os.fstat(fd)
            except OSError:
                os.dup2(os.open(os.devnull, os.O_RDWR), fd)
        os.chdir("/")
        os.umask(0o077)
        self.ident = identity()
        self.started = time.time()
        self.last = time.monotonic()
        if not self._listen():
            return 0
        if self.log_file:  # opened only now: a server that lost the race keeps out of it
            log = os.open(self.path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            if os.fstat(log).st_size > _MAX_LOG:
                os.ftruncate(log, 0)  # a few lines per server: this takes a long time
            os.dup2(log, 2)
            os.close(log)
        # Taken before the imports: a file edited while they run counts as a change.
        self.fingerprint = fingerprint()
        os.chdir(self.path.parent)
        self.warm_failures = warm_up()
        os.chdir("/")
        for failure in self.warm_failures:
            self._log(f"warm-up: {failure}")
        gc.collect()
        gc.freeze()  # the workers' collector then never touches (and copies) these pages
        # NumPy's OpenBLAS runs a thread pool that it stops around a fork (pthread_atfork)
        # and restarts only when used: one throwaway fork leaves the server single-threaded.
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        self._start_spare()
        self.wake_r, wake_w = os.pipe()
        self.wake_w = wake_w
        for fd in (self.wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the selector
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self._log(f"serving {self.path} (pid {os.getpid()}, idle timeout {self.idle:g} s)")
        try:
            self._loop()
        finally:
            self._close_listener("exiting")
            if self.spare is not None:
                self.spare.close()
        return 0

    def _start_spare(self) -> None:
        """Start a zygote for the next grade to fork its sandbox child from (see zygote.py).

        Each zygote goes to exactly one worker, which adopts it; the server then starts the
        next. It imports in the background, so a grade that comes at once only waits for it.
        """
        from .sandbox.launcher import ZYGOTE_PRELOAD, Launcher, Limits, Mode
        from .sandbox.process import Zygote

        self.spare = None
        if os.environ.get("GRADER_ZYGOTE", "").strip() == "0":
            return
        if self.launcher is None:
            try:
                self.launcher = Launcher(Mode.BUBBLEWRAP, limits=Limits())
            except Exception as exc:  # no bubblewrap here: grades start their child directly
                self._log(f"no spare sandbox: {exc}")
                return
        try:
            self.spare = Zygote(self.launcher, ZYGOTE_PRELOAD, quiet=True)
            self.spares_started += 1
        except Exception as exc:
            self._log(f"no spare sandbox: {exc}")

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} grade server: {message}", file=sys.stderr, flush=True)

    def _listen(self) -> bool:
        """Take the lock beside the socket, replace a stale socket file, bind and listen."""
        import fcntl

        st = os.lstat(self.path.parent)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            self._log(f"{self.path.parent} is not private to this user; not serving")
            return False
        self.lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            return False  # another server runs (or is starting) for this socket
        try:
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self._log(f"{self.path} exists and is not a socket; not serving")
                return False
            os.unlink(self.path)  # no server holds the lock, so nobody listens on it
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        # Clients that connect during the warm-up wait in the backlog instead of grading alone.
        self.listener.listen(64)
        self.inode = os.lstat(self.path).st_ino
        return True

    def _close_listener(self, reason: str) -> None:
        """Stop taking requests and free the socket name at once; running grades finish."""
        if self.closing or not hasattr(self, "listener"):
            return
        self.closing = True
        self._log(f"closing: {reason}")
        try:
            if os.lstat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass
        if hasattr(self, "sel"):
            self.sel.unregister(self.listener)
        self.listener.close()
        os.close(self.lock_fd)  # a fresh server may take over while these grades finish

    def _loop(self) -> None:
        while True:
            if self.stop_requested:
                self._close_listener("asked to stop")
            now = time.monotonic()
            if not self.jobs and (self.closing or now - self.last >= self.idle):
                self._close_listener(f"idle for {self.idle:g} s")
                return
            deadlines = [j.kill_at for j in self.jobs.values() if j.kill_at is not None]
            if not self.jobs and not self.closing:
                deadlines.append(self.last + self.idle)
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            for key, _ in self.sel.select(timeout):
                if key.data == "listen":
                    self._accept()
                elif key.data == "wake":
                    while True:
                        try:
                            if not os.read(self.wake_r, 512):
                                break
                        except BlockingIOError:
                            break
                else:
                    self._from_client(int(key.data))
            self._reap()
            now = time.monotonic()
            for pid, job in self.jobs.items():
                if job.kill_at is not None and now >= job.kill_at:
                    job.kill_at = None
                    _signal(pid, signal.SIGKILL)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.last = time.monotonic()
        conn.settimeout(10.0)
        try:
            uid = _peer_uid(conn)
            if uid != os.geteuid():
                self._log(f"refused a connection from uid {uid}")
                conn.close()
                return
            request, fds = _read_request(conn)
        except (OSError, ValueError) as exc:
            self._log(f"bad request: {exc}")
            conn.close()
            return
        if request["op"] == "grade":
            self._grade(conn, request, fds)
            return
        if request["op"] == "status":
            _reply(conn, self._status())
        else:
            _reply(conn, {"stopping": True})
            self.stop_requested = True
        conn.close()

    def _status(self) -> dict[str, Any]:
        return {"running": True, "pid": os.getpid(), "socket": str(self.path),
                "identity": self.ident, "since": self.started, "grading": len(self.jobs),
                "threads": _thread_count(), "served": self.served,
                "fingerprint": self.fingerprint,
                "idle_timeout": self.idle, "warm_failures": self.warm_failures,
                "spare_sandbox": self.spare is not None and self.spare.is_ready(0),
                "spares_started": self.spares_started}  # fmt: skip

    def _refusal(self, request: dict[str, Any]) -> tuple[str, bool] | None:
        """Why this server must not grade the request, and whether it must exit too."""
        if request.get("identity") != self.ident:
            return "the request is for another grader installation or Python", False
        if fingerprint() != self.fingerprint:
            return "the installed grader changed since this server started", True
        if _thread_count() != 1:
            return "the server has threads, so it cannot fork safely", True
        return None

    def _grade(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        import selectors

        try:
            refusal = self._refusal(request)
            if refusal is not None:
                _reply(conn, {"fallback": refusal[0]})
                conn.close()
                if refusal[1]:
                    self._close_listener(refusal[0])
                return
            if _client_left(conn):
                conn.close()
                return
            # A spare still importing would make this grade wait for it: keep it for the next.
            handover = self.spare is not None and self.spare.is_ready(0)
            try:
                pid = os.fork()
            except OSError as exc:
                _reply(conn, {"fallback": f"cannot fork a worker: {exc.strerror}"})
                conn.close()
                return
            if pid == 0:
                self._worker(conn, fds, request, handover)
            if handover:  # the worker has it now
                self.spare.release()
                self._start_spare()
            elif self.spare is not None and not self.spare.alive:
                self._start_spare()
        finally:
            for fd in fds:
                os.close(fd)
        conn.settimeout(None)
        self.served += 1
        self.jobs[pid] = _Job(conn)
        _reply(conn, {"started": pid})
        self.sel.register(conn, selectors.EVENT_READ, pid)

    def _from_client(self, pid: int) -> None:
        """The client sent an interrupt (Ctrl-C) or hung up: SIGINT now, SIGKILL soon."""
        job = self.jobs.get(pid)
        if job is None:
            return
        try:
            data = job.conn.recv(64)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(job.conn)
            job.listening = False
        if not job.interrupted:
            job.interrupted = True
            job.kill_at = time.monotonic() + _GRACE
            _signal(pid, signal.SIGINT)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.pop(pid, None)
            if job is None:
                continue
            self.last = time.monotonic()
            code = os.waitstatus_to_exitcode(status)
            reply: dict[str, Any] = {"exit": code}
            if code < 0:
                reply["exit"] = 130 if job.interrupted else 3
                if not job.interrupted:
                    name = signal.Signals(-code).name if -code in signal.valid_signals() else ""
                    reply["message"] = (
                        f"grade: internal error: the grading worker died ({name or -code})"
                    )
            if job.listening:
                self.sel.unregister(job.conn)
            _reply(job.conn, reply)
            job.conn.close()

    def _worker(
        self, conn: socket.socket, fds: list[int], request: dict[str, Any], handover: bool
    ) -> NoReturn:
        """The forked child: become the client's process and run the ordinary CLI."""
        code = 3
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # Nothing of the server's may leak into the grade (or keep its socket alive).
            self.sel.close()
            self.listener.close()
            for job in self.jobs.values():
                job.conn.close()
            conn.close()
            for fd in (self.wake_r, self.wake_w, -1 if self.closing else self.lock_fd):
                if fd >= 0:
                    os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            if handover:
                from .grading import adopt_spare_zygote

                adopt_spare_zygote(self.spare)
            elif self.spare is not None:
                self.spare.release()  # the server's, still starting: not for this grade
            code = _run_request(request)
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _client_left(conn: socket.socket) -> bool:
    """True if the client hung up while its request waited (it is grading on its own)."""
    conn.setblocking(False)  # with a timeout set, recv would wait for data first
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        conn.setblocking(True)


def _run_request(request: dict[str, Any]) -> int:
    """In the worker: take on the client's cwd, environment and stdio, then run the CLI."""
    import io
    import locale

    streams = []
    for fd, (encoding, errors, line_buffering, write_through) in enumerate(request["stdio"]):
        binary = open(fd, "rb" if fd == 0 else "wb", closefd=False)
        streams.append(
            io.TextIOWrapper(
                binary,
                encoding=encoding,
                errors=errors,
                line_buffering=line_buffering,
                write_through=write_through,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        os.chdir(request["cwd"])
    except OSError as exc:
        print(f"grade: error: cannot enter {request['cwd']}: {exc.strerror}", file=sys.stderr)
        return 2
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    sys.dont_write_bytecode = request["dont_write_bytecode"]  # pytest's rewritten checks too
    time.tzset()
    try:
        locale.setlocale(locale.LC_CTYPE, "")
    except locale.Error:
        pass
    argv = request["argv"]
    sys.argv = ["grade", *argv]
    from .cli import run

    try:
        code = run(argv)
    except SystemExit as exc:  # argparse's --help and usage errors
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code
