"""The sandbox's seccomp filter and what the child can and cannot do inside bubblewrap.

The filter is checked two ways: fast, by running the BPF program in a small interpreter here
against synthetic system calls; and for real, by probes inside the sandbox (marked slow).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.sandbox import seccomp, wire
from grader.sandbox.launcher import SANDBOX_ENV, Launcher, Limits, Mode, Runtime
from grader.sandbox.process import ChildProcess

X86 = seccomp.AUDIT_ARCH_X86_64
ARM = seccomp.AUDIT_ARCH_AARCH64
ALLOW = seccomp.RET_ALLOW


def errno_ret(code: int) -> int:
    return seccomp.RET_ERRNO | code


# --- a classic-BPF interpreter for the instructions the filter uses --------------------------


def run_bpf(program: bytes, nr: int, arch: int = X86, args: tuple[int, ...] = ()) -> int:
    """What the kernel would return for one system call: SECCOMP_RET_* plus data."""
    full = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    acc = 0
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps <= len(insns), "the program loops"
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x06:  # ret k
            return k
        elif code == 0x05:  # ja k
            pc += k
        elif code in (0x15, 0x35, 0x45):
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(insns), "jump out of the program"


FILTER = seccomp.build_filter()
FILTER_FORK = seccomp.build_filter(allow_fork=True)
RULE_NRS = {r.x86_64 for r in seccomp.RULES} | {r.aarch64 for r in seccomp.RULES}


def test_filter_is_a_valid_program() -> None:
    assert len(FILTER) % 8 == 0
    assert 0 < len(FILTER) // 8 <= 4096
    opcodes = {struct.unpack_from("=H", FILTER, i)[0] for i in range(0, len(FILTER), 8)}
    assert opcodes <= {0x20, 0x15, 0x35, 0x45, 0x05, 0x06}
    last = struct.unpack_from("=HBBI", FILTER, len(FILTER) - 8)
    assert last[0] == 0x06  # every path ends in a return


@settings(derandomize=True, max_examples=300)
@given(
    nr=st.integers(0, 600).filter(lambda n: n not in RULE_NRS),
    args=st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6),
)
def test_unlisted_calls_are_allowed(nr: int, args: list[int]) -> None:
    assert run_bpf(FILTER, nr, X86, tuple(args)) == ALLOW
    assert run_bpf(FILTER, nr, ARM, tuple(args)) == ALLOW


@pytest.mark.parametrize("rule", [r for r in seccomp.RULES if not r.check], ids=lambda r: r.name)
def test_refused_calls_fail_with_their_errno(rule: seccomp.Rule) -> None:
    for arch, nr in ((X86, rule.x86_64), (ARM, rule.aarch64)):
        if nr is not None:
            assert run_bpf(FILTER, nr, arch) == errno_ret(rule.errno), rule.name
    if rule.fork_only and rule.x86_64 is not None:
        assert run_bpf(FILTER_FORK, rule.x86_64, X86) == ALLOW


@settings(derandomize=True, max_examples=200)
@given(family=st.integers(0, 2**32 - 1), high=st.integers(0, 2**32 - 1))
def test_only_unix_sockets(family: int, high: int) -> None:
    want = ALLOW if family == 1 else errno_ret(errno.EAFNOSUPPORT)
    # the kernel reads an int: the upper half of the register never matters
    for nr, arch in ((41, X86), (53, X86), (198, ARM), (199, ARM)):
        assert run_bpf(FILTER, nr, arch, (family | high << 32, 1, 0)) == want


THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes to clone()
FORK_FLAGS = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD (fork())


@settings(derandomize=True, max_examples=200)
@given(
    ns=st.sampled_from(
        [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000]
    ),
    base=st.sampled_from([THREAD_FLAGS, FORK_FLAGS, 17]),
)
def test_clone_into_a_namespace_is_refused(ns: int, base: int) -> None:
    for program in (FILTER, FILTER_FORK):
        assert run_bpf(program, 56, X86, (base | ns,)) == errno_ret(errno.EPERM)
        assert run_bpf(program, 220, ARM, (base | ns,)) == errno_ret(errno.EPERM)


def test_threads_always_new_processes_only_when_allowed() -> None:
    assert run_bpf(FILTER, 56, X86, (THREAD_FLAGS,)) == ALLOW
    assert run_bpf(FILTER, 56, X86, (FORK_FLAGS,)) == errno_ret(errno.EPERM)
    assert run_bpf(FILTER, 56, X86, (0x4111,)) == errno_ret(errno.EPERM)  # vfork-style spawn
    assert run_bpf(FILTER_FORK, 56, X86, (FORK_FLAGS,)) == ALLOW
    assert run_bpf(FILTER, 435, X86) == errno_ret(errno.ENOSYS)  # clone3: fall back to clone


def test_ioctl_terminal_injection_refused() -> None:
    for cmd in (seccomp.TIOCSTI, seccomp.TIOCLINUX, seccomp.TIOCSTI | 0xDEAD << 32):
        assert run_bpf(FILTER, 16, X86, (0, cmd)) == errno_ret(errno.EPERM)
        assert run_bpf(FILTER, 29, ARM, (0, cmd)) == errno_ret(errno.EPERM)
    assert run_bpf(FILTER, 16, X86, (0, 0x5401)) == ALLOW  # TCGETS: isatty() keeps working


def test_personality_only_queried() -> None:
    assert run_bpf(FILTER, 135, X86, (0xFFFFFFFF,)) == ALLOW
    assert run_bpf(FILTER, 135, X86, (0,)) == ALLOW
    assert run_bpf(FILTER, 135, X86, (0x0040000,)) == errno_ret(errno.EPERM)  # no ASLR


@settings(derandomize=True, max_examples=100)
@given(nr=st.integers(0, 2**31 - 1), arch=st.sampled_from([0x40000003, 0x40000028, 0]))
def test_foreign_abis_get_nothing(nr: int, arch: int) -> None:
    assert run_bpf(FILTER, nr, arch) == errno_ret(errno.ENOSYS)
    assert run_bpf(FILTER, nr | seccomp.X32_SYSCALL_BIT, X86) == errno_ret(errno.ENOSYS)


def test_refused_calls_are_named() -> None:
    names = seccomp.refused_calls()
    assert {"ptrace", "bpf", "keyctl", "io_uring_setup", "mount", "unshare", "fork"} <= set(names)
    assert "fork" not in seccomp.refused_calls(allow_fork=True)


# --- the filter and the sandbox, for real -----------------------------------------------------

PROBES = r"""
import ctypes, errno, os, socket, threading, resource
import numpy as np
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ARM = os.uname().machine == "aarch64"
R = {}
def err(f):
    try:
        f()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    except ValueError:
        return "ValueError"
def sysc(x86, arm, *args):
    def f():
        if libc.syscall(ctypes.c_long(arm if ARM else x86), *[ctypes.c_long(a) for a in args]) < 0:
            raise OSError(ctypes.get_errno(), "")
    return f
for name, fam, kind in (("inet", 2, 1), ("inet6", 10, 1), ("vsock", 40, 1),
                        ("netlink", 16, 3), ("packet", 17, 3), ("udp", 2, 2)):
    R["socket_" + name] = err(lambda: socket.socket(fam, kind).close())
R["socketpair_unix"] = err(lambda: [s.close() for s in socket.socketpair()])
R["fork"] = err(lambda: os.fork() or None)
R["ptrace"] = err(sysc(101, 117, 16, 1, 0, 0))
R["keyctl"] = err(sysc(250, 219, 0, -3, 1))
R["bpf"] = err(sysc(321, 280, 0, 0, 0))
R["io_uring"] = err(sysc(425, 425, 1, 0))
R["unshare"] = err(sysc(272, 97, 0x10000000))
R["mount"] = err(sysc(165, 40, 0, 0, 0, 0, 0))
R["perf"] = err(sysc(298, 241, 0, 0, -1, -1, 0))
R["userfaultfd"] = err(sysc(323, 282, 0))
R["raise_as"] = err(lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
R["raise_nproc"] = err(lambda: resource.setrlimit(resource.RLIMIT_NPROC, (-1, -1)))
box = []
t = threading.Thread(target=lambda: box.append(float((np.ones((50, 50)) @ np.ones(50)).sum())))
t.start(); t.join()
R["thread_numpy"] = box[0] if box else None
R["seccomp"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]
R["uid"] = os.getuid()
R["env"] = sorted(os.environ)
R["pid1_env"] = open("/proc/1/environ").read()
R["root_writable"] = err(lambda: open("/x", "w").close())
R["tmp_writable"] = err(lambda: open("/tmp/x", "w").close())
R["cwd"] = os.getcwd()
"""


def sandbox_run(
    source: str, launcher: Launcher | None = None, *, timeout: float = 20.0
) -> dict[str, Any]:
    """Run ``source`` as one cell in a fresh sandbox; return its variable ``R``."""
    launcher = launcher or Launcher(Mode.BUBBLEWRAP)
    init = {
        "module_name": "__main__",
        "preload": ["numpy"],
        "limits": launcher.limits.as_rlimits(with_nproc=True),
    }
    child = ChildProcess(launcher, init=init, timeout=timeout)
    try:
        reply, _ = child.request(
            {"op": "cell", "source": source, "filename": "<t>"}, timeout=timeout
        )
        assert reply["ok"], reply.get("error")
        got, blobs = child.request({"op": "get", "name": "R"}, timeout=timeout)
    finally:
        child.close()
    value = wire.decode_value(got["value"], blobs)
    assert isinstance(value, dict)
    return value


def marked_processes(marker: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                out.append(int(entry.name))
        except OSError:
            continue
    return out


@pytest.mark.slow
def test_probes_inside_bubblewrap() -> None:
    r = sandbox_run(PROBES)
    for name in ("inet", "inet6", "vsock", "netlink", "packet", "udp"):
        assert r["socket_" + name] == "EAFNOSUPPORT", name
    for name in (
        "fork",
        "ptrace",
        "keyctl",
        "bpf",
        "io_uring",
        "unshare",
        "mount",
        "perf",
        "userfaultfd",
    ):
        assert r[name] == "EPERM", name
    assert r["raise_as"] == r["raise_nproc"] == "ValueError"  # hard limits hold
    assert r["socketpair_unix"] == "ok"
    assert r["thread_numpy"] == 2500.0
    assert r["seccomp"] == "2"
    assert r["uid"] == (65534 if os.geteuid() == 0 else os.getuid())
    assert set(r["env"]) <= set(SANDBOX_ENV) | {"PWD", "LC_CTYPE"}  # PWD: from --chdir
    assert r["pid1_env"].strip("\0").split("\0") == ["PATH=/usr/bin:/bin"]
    assert r["root_writable"] == "EROFS"
    assert r["tmp_writable"] == "ok"
    assert r["cwd"] == "/tmp"


FORK_BOMB = r"""
import os, time
R = {"started": 0, "error": ""}
pids = []
try:
    for _ in range(500):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/sleep", [MARKER, "300"])
        pids.append(pid)
except OSError as exc:
    R["error"] = type(exc).__name__
R["started"] = len(pids)
"""


@pytest.mark.slow
def test_fork_bomb_contained_when_forking_is_allowed() -> None:
    marker = "grtest" + secrets.token_hex(6)
    launcher = Launcher(Mode.BUBBLEWRAP, limits=Limits(allow_fork=True, processes=16))
    r = sandbox_run(f"MARKER = {marker!r}\n" + FORK_BOMB, launcher)
    assert r["error"] == "BlockingIOError"  # EAGAIN from RLIMIT_NPROC
    assert 0 < r["started"] < 16
    deadline = time.monotonic() + 2
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked_processes(marker) == []


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder under the system temp folder that the sandbox user may read."""
    path = Path(tempfile.mkdtemp(prefix="grader-sandbox-test-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_runtime_folder_under_tmp_stays_visible(shared_dir: Path) -> None:
    (shared_dir / "visible.txt").write_text("here")
    current = Runtime.current()
    runtime = Runtime(current.python, (*current.roots, str(shared_dir)))
    r = sandbox_run(
        f"R = {{'ls': sorted(__import__('os').listdir({str(shared_dir)!r}))}}",
        Launcher(Mode.BUBBLEWRAP, runtime=runtime),
    )
    assert r["ls"] == ["visible.txt"]


@pytest.mark.slow
def test_grader_package_hidden_when_inside_the_runtime() -> None:
    package = Path(seccomp.__file__).resolve().parent.parent
    current = Runtime.current()
    runtime = Runtime(current.python, (*current.roots, str(package.parent)))
    source = (
        f"import os\nR = {{'ls': os.listdir({str(package)!r}), "
        f"'siblings': len(os.listdir({str(package.parent)!r}))}}"
    )
    r = sandbox_run(source, Launcher(Mode.BUBBLEWRAP, runtime=runtime))
    assert r["ls"] == []
    assert r["siblings"] > 1  # the folder around it is visible: only the package is hidden


@pytest.mark.slow
def test_installer_loads_the_filter_without_bubblewrap() -> None:
    probe = (
        "import os, socket\n"
        "status = [l for l in open('/proc/self/status') if l.startswith('Seccomp:')]\n"
        "try:\n    os.fork(); print('forked')\nexcept OSError as e: print(e.errno)\n"
        "try:\n    socket.socket(socket.AF_INET)\nexcept OSError as e: print(e.errno)\n"
        "print(status[0].split()[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        preexec_fn=seccomp.installer(FILTER),
        timeout=30,
        check=True,
    )
    assert out.stdout.split() == [str(errno.EPERM), str(errno.EAFNOSUPPORT), "2"]
