"""Starting the sandboxed child: bubblewrap (the default) or a weaker, labelled process mode.

This module runs in the trusted parent. It decides which Python runtime the child uses, which
paths the sandbox sees (read-only), the environment (an allow-list), the unprivileged user when
the grader runs as root, and how the child is killed. It never passes a secret to the child:
bubblewrap itself is started with a minimal environment because ``/proc/1/environ`` and
``/proc/1/cmdline`` are readable inside.
"""

from __future__ import annotations

import ctypes
import enum
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SandboxUnavailable
from . import seccomp

NOBODY = 65534
CHILD_DIR = "/opt/grader"
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
# What a zygote imports once for all the children it forks: what most submissions import.
ZYGOTE_PRELOAD = ("numpy", "sympy")
# Of those, what a batch's zygote imports only when a submission of the batch names it: SymPy
# costs a zygote 0.6 s of CPU and 35 MB, and makes each of its forks about 2 ms slower.
OPTIONAL_PRELOAD = ("sympy",)


def zygote_preload(texts: Iterable[bytes]) -> tuple[str, ...]:
    """What a zygote for submissions with these contents imports: NumPy always, and each
    optional module whose name any of them contains (in an import or anywhere else: a mention
    too many costs only the import). A module imported in a way that never names it is
    imported by the child itself, as a directly started child does."""
    wanted: set[str] = set()
    for text in texts:
        wanted.update(n for n in OPTIONAL_PRELOAD if n not in wanted and n.encode() in text)
        if len(wanted) == len(OPTIONAL_PRELOAD):
            break
    return tuple(n for n in ZYGOTE_PRELOAD if n not in OPTIONAL_PRELOAD or n in wanted)


CHILD_SOURCES = ("wire.py", "child.py")
ZYGOTE_SOURCES = (*CHILD_SOURCES, "seccomp.py", "zygote.py")
FILTER_FILE = f"{CHILD_DIR}/seccomp.bpf"


class Mode(enum.StrEnum):
    BUBBLEWRAP = "bubblewrap"
    PROCESS = "process"


@dataclass(frozen=True)
class Limits:
    """Resource limits set inside the child before student code runs."""

    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30
    processes: int = 32
    file_bytes: int = 16 << 20
    open_files: int = 64
    tmpfs_bytes: int = 64 << 20
    # New processes are refused by the seccomp filter unless allowed: RLIMIT_AS is per
    # process, so every forked child would get another full memory allowance.
    allow_fork: bool = False

    def as_rlimits(self, *, with_nproc: bool) -> dict[str, object]:
        limits: dict[str, object] = {
            "cpu": [self.cpu_seconds, self.cpu_seconds + 5],
            "as": self.memory_bytes,
            "fsize": self.file_bytes,
            "nofile": self.open_files,
            "core": 0,
        }
        if with_nproc:
            limits["nproc"] = self.processes
        return limits


@dataclass(frozen=True)
class Runtime:
    """The interpreter the child runs and the folders it needs to see (read-only)."""

    python: str
    roots: tuple[str, ...]

    @classmethod
    def current(cls) -> Runtime:
        paths = sysconfig.get_paths()
        wanted = {
            sys.base_prefix,
            sys.prefix,
            paths["stdlib"],
            paths["platstdlib"],
            paths["purelib"],
            paths["platlib"],
        }
        for name in ("numpy", "sympy"):
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if file:
                wanted.add(str(Path(file).resolve().parent.parent))
        real = sorted({os.path.realpath(p) for p in wanted if p and os.path.isdir(p)})
        roots: list[str] = []
        for path in real:
            if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
                roots.append(path)
        python = os.path.realpath(sys.executable)
        if not any(python.startswith(r + "/") for r in roots):
            roots.append(os.path.dirname(python))
        return cls(python=python, roots=tuple(r for r in roots if not _is_system(r)))


def _is_system(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


def unreachable_component(path: str, uid: int = NOBODY) -> str | None:
    """The first folder on ``path`` that user ``uid`` (not in any group) cannot traverse."""
    current = Path("/")
    for part in Path(path).parts[1:]:
        try:
            st = os.stat(current)
        except OSError:
            return str(current)
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return str(current)
        current = current / part
    return None


@dataclass
class Launch:
    """How to start one child: argv, environment, fds to pass, and a pre-exec hook."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    preexec: Callable[[], None] | None
    data_fds: list[int] = field(default_factory=list)


class Launcher:
    """Builds child launches for one mode; probes once whether the mode works here."""

    def __init__(
        self, mode: Mode, *, limits: Limits | None = None, runtime: Runtime | None = None
    ) -> None:
        self.mode = mode
        self.limits = limits or Limits()
        self.runtime = runtime or Runtime.current()
        self.is_root = os.geteuid() == 0
        self.run_as = NOBODY if self.is_root else None
        self._hidden = self._unreachable_roots()
        if self._hidden and self.mode is Mode.PROCESS:
            here = os.path.dirname(os.path.abspath(__file__))
            if unreachable_component(here, self.run_as or NOBODY):
                raise SandboxUnavailable(self._reachability_advice())
        # None where the filter cannot be built (an architecture it does not know).
        arch = seccomp.native_arch()
        self.seccomp_program: bytes | None = (
            seccomp.build_filter(allow_fork=self.limits.allow_fork, arches=(arch,))
            if arch is not None
            else None
        )
        self._install_seccomp = (
            seccomp.installer(self.seccomp_program) if self.seccomp_program is not None else None
        )

    # --- runtime reachability --------------------------------------------------------------

    def _unreachable_roots(self) -> list[str]:
        if self.run_as is None:
            return []
        return [r for r in self.runtime.roots if unreachable_component(r, self.run_as)]

    def _reachability_advice(self) -> str:
        root = self._hidden[0]
        blocker = unreachable_component(root) or root
        return (
            f"the sandbox user 'nobody' cannot reach the Python runtime at {root} "
            f"(folder {blocker} is not traversable by other users). Fix one of: "
            f"`chmod o+x {blocker}` (lets others pass through, not list it); install the "
            "grader in a virtual environment outside that folder; or run the grader as an "
            "ordinary user."
        )

    # --- building the command --------------------------------------------------------------

    def child_command(self, fd_in: int, fd_out: int) -> list[str]:
        boot = (
            f"import sys; sys.path.insert(0, {CHILD_DIR!r}); import child; "
            f"sys.exit(child.main([{str(fd_in)!r}, {str(fd_out)!r}]))"
        )
        return [self.runtime.python, "-I", "-B", "-X", "frozen_modules=on", "-c", boot]

    def build(self, fd_in: int, fd_out: int) -> Launch:
        if self.mode is Mode.PROCESS:
            return self._build_process(fd_in, fd_out)
        return self._build_bwrap(fd_in, fd_out)

    def _build_process(self, fd_in: int, fd_out: int) -> Launch:
        here = os.path.dirname(os.path.abspath(__file__))
        argv = self.child_command(fd_in, fd_out)
        argv[-1] = argv[-1].replace(repr(CHILD_DIR), repr(here))
        env = dict(SANDBOX_ENV)
        env["HOME"] = "/tmp"
        return Launch(argv, env, (fd_in, fd_out), self._preexec_process)

    def _build_bwrap(self, fd_in: int, fd_out: int) -> Launch:
        args, data_fds = self._bwrap_args(CHILD_SOURCES, zygote=False)
        args += self.child_command(fd_in, fd_out)
        return Launch(
            args,
            {"PATH": "/usr/bin:/bin"},
            (fd_in, fd_out, *data_fds),
            self._preexec_bwrap,
            data_fds,
        )

    def build_zygote(self, ctl_fd: int, preload: Sequence[str]) -> Launch:
        """A zygote (``zygote.py``) in a sandbox like a child's, serving on ``ctl_fd``.

        The seccomp filter is not loaded by bubblewrap here, because the zygote must still
        create namespaces for its children; each child loads it before any student code runs.
        """
        if self.mode is not Mode.BUBBLEWRAP:
            raise SandboxUnavailable("a zygote needs bubblewrap")
        if self.seccomp_program is None:
            raise SandboxUnavailable("a zygote needs the seccomp filter on this machine")
        args, data_fds = self._bwrap_args(ZYGOTE_SOURCES, zygote=True)
        zargs = [str(ctl_fd), FILTER_FILE, str(self.limits.tmpfs_bytes), *preload]
        boot = (
            f"import sys; sys.path.insert(0, {CHILD_DIR!r}); import zygote; "
            f"sys.exit(zygote.main({zargs!r}))"
        )
        args += [self.runtime.python, "-I", "-B", "-X", "frozen_modules=on", "-c", boot]
        return Launch(
            args, {"PATH": "/usr/bin:/bin"}, (ctl_fd, *data_fds), self._preexec_bwrap, data_fds
        )

    def _bwrap_args(self, sources: Sequence[str], *, zygote: bool) -> tuple[list[str], list[int]]:
        """bubblewrap's options (everything before the command) and the data fds they read."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed: `apt-get install bubblewrap` (Debian/Ubuntu) or "
                "`dnf install bubblewrap`; or grade your own work with `--sandbox process`."
            )
        args = [
            bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--clearenv",
            "--hostname",
            "sandbox",
        ]
        for key, value in SANDBOX_ENV.items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = os.path.join("/", link)
            if os.path.islink(target):
                args += ["--symlink", os.readlink(target), target]
            elif os.path.isdir(target):
                args += ["--ro-bind", target, target]
        for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        # /tmp first: a runtime that lives under /tmp (a CI virtualenv) is bound on top of it.
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(self.limits.tmpfs_bytes),
            "--tmpfs",
            "/tmp",
        ]
        visible = self._visible_roots()
        for source, dest in visible:
            args += ["--ro-bind", source, dest]
        # The grader's own package, when installed inside the runtime, is not the child's
        # business: an empty read-only folder replaces it.
        for hidden in _grader_dirs_inside([dest for _, dest in visible]):
            args += ["--size", "4096", "--tmpfs", hidden, "--remount-ro", hidden]
        data_fds: list[int] = []
        here = Path(__file__).resolve().parent
        for name in sources:
            fd = _data_fd((here / name).read_bytes())
            data_fds.append(fd)
            args += ["--ro-bind-data", str(fd), f"{CHILD_DIR}/{name}"]
        if self.seccomp_program is not None:
            fd = _data_fd(self.seccomp_program)
            data_fds.append(fd)
            args += ["--ro-bind-data", str(fd), FILTER_FILE] if zygote else ["--seccomp", str(fd)]
        args += ["--chdir", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/"]
        return args, data_fds

    def _visible_roots(self) -> list[tuple[str, str]]:
        """(source as bwrap sees it, destination inside) for each runtime folder."""
        out = []
        for i, root in enumerate(self.runtime.roots):
            source = f"{_EXPOSE_DIR}/{i}" if root in self._hidden else root
            out.append((source, root))
        return out

    # --- pre-exec hooks (run in the forked child, before exec) -------------------------------

    def _preexec_bwrap(self) -> None:
        if self._hidden:
            _expose(self._hidden, self.runtime.roots)
        self._drop_privileges()

    def _preexec_process(self) -> None:
        if self._hidden:
            _expose(self._hidden, self.runtime.roots, in_place=True)
        self._drop_privileges()
        # Die with the grader (bwrap's --die-with-parent does this in the other mode). Set after
        # the privilege drop: the kernel clears the death signal when credentials change.
        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if self._install_seccomp is not None:
            self._install_seccomp()

    def _drop_privileges(self) -> None:
        if self.run_as is not None:
            os.setgroups([])
            os.setgid(self.run_as)
            os.setuid(self.run_as)

    # --- probing ---------------------------------------------------------------------------

    def probe(self, timeout: float = 10.0) -> None:
        """Start a trivial child; raise SandboxUnavailable with what to change if it fails."""
        read_req, write_req = os.pipe()
        read_rep, write_rep = os.pipe()
        launch = self.build(read_req, write_rep)
        base = launch.argv[: -len(self.child_command(0, 0))]
        argv = [*base, self.runtime.python, "-I", "-B", "-c", "import numpy"]
        try:
            proc = subprocess.run(
                argv,
                env=launch.env,
                pass_fds=launch.pass_fds,
                preexec_fn=launch.preexec,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SandboxUnavailable("the sandbox probe did not finish in time") from exc
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start the sandbox: {exc}") from exc
        finally:
            for fd in (read_req, write_req, read_rep, write_rep, *launch.data_fds):
                os.close(fd)
        if proc.returncode != 0:
            raise SandboxUnavailable(_advice(proc.stderr.decode("utf-8", "replace")))


def _advice(stderr: str) -> str:
    line = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    if "Permission denied" in line and "source path" in line:
        return f"bubblewrap cannot see the Python runtime ({line}); see `grade doctor`."
    if "namespace" in line.lower() or "uid map" in line.lower():
        return (
            f"bubblewrap cannot create namespaces here ({line}). On Ubuntu 23.10+ allow it with "
            "`sudo apt install apparmor-profiles` and load the `bwrap-userns-restrict` profile, "
            "or `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`; in a container, "
            "allow user namespaces. Or grade your own work with `--sandbox process`."
        )
    return f"bubblewrap failed to start: {line}"


def _grader_dirs_inside(roots: Sequence[str]) -> list[str]:
    package = str(Path(__file__).resolve().parent.parent)
    return [package for r in roots if package.startswith(r.rstrip("/") + "/")][:1]


def _data_fd(data: bytes) -> int:
    read_fd, write_fd = os.pipe()
    if len(data) > 60000:
        raise SandboxUnavailable("child source too large for a pipe")
    os.write(write_fd, data)
    os.close(write_fd)
    return read_fd


# --- exposing unreachable runtime folders through a private mount namespace ---------------
#
# When the grader runs as root with Python under a 0700 home, 'nobody' cannot reach it by path.
# Rather than change the host's permissions, the pre-exec hook (still root) enters a private
# mount namespace of its own, mounts a small tmpfs and bind-mounts each runtime folder into it;
# bubblewrap, started as nobody in that namespace, binds them back to their usual paths.

_EXPOSE_DIR = "/mnt"
_CLONE_NEWNS = 0x00020000
_PR_SET_PDEATHSIG = 1
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def _expose(hidden: Sequence[str], roots: Sequence[str], *, in_place: bool = False) -> None:
    """Bind each hidden runtime folder to /mnt/<i> in a private mount namespace.

    ``in_place`` (process mode, where no bwrap binds them back): then cover each folder that
    blocks the way (e.g. the 0700 /root) with an empty tmpfs and bind the runtime back at its
    own path, so the interpreter runs from where it was installed. The covered folder's other
    contents are thereby hidden from the child too.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(
        source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
    ) -> None:
        rc = libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        )
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), target)

    if libc.unshare(_CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare(CLONE_NEWNS): " + os.strerror(err))
    mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    mount("tmpfs", _EXPOSE_DIR, "tmpfs", 0, "size=64k,mode=755")
    for i, root in enumerate(roots):
        if root in hidden:
            target = f"{_EXPOSE_DIR}/{i}"
            os.mkdir(target, 0o755)
            mount(root, target, None, _MS_BIND | _MS_REC)
    if not in_place:
        return
    covered: set[str] = set()
    for i, root in enumerate(roots):
        if root not in hidden:
            continue
        blocker = unreachable_component(root)
        if blocker and blocker not in covered and blocker != "/":
            mount("tmpfs", blocker, "tmpfs", 0, "size=64k,mode=755")
            covered.add(blocker)
        os.makedirs(root, mode=0o755, exist_ok=True)
        mount(f"{_EXPOSE_DIR}/{i}", root, None, _MS_BIND | _MS_REC)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
