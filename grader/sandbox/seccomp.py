"""A seccomp filter for the sandboxed child, written as classic BPF by hand (no dependency).

Runs in the trusted parent: it builds the filter program as bytes (an array of
``struct sock_filter``) that bubblewrap loads with ``--seccomp FD`` just before it starts the
child, or that :func:`installer` loads in a pre-exec hook in the weaker process mode. The
filter closes what namespaces leave open: socket families other than ``AF_UNIX`` (so no
``AF_INET``/``AF_INET6``/``AF_VSOCK``/``AF_NETLINK``/``AF_PACKET``), ``ptrace`` and other
cross-process access, the kernel keyring, ``bpf``, ``io_uring``, ``perf_event_open``,
``userfaultfd``, every mount and namespace call, ``TIOCSTI``/``TIOCLINUX``, and by default
new processes (threads stay allowed): ``RLIMIT_AS`` is per process, so each forked child
would get its own memory allowance.

Refused calls fail with an errno (``EPERM``; ``EAFNOSUPPORT`` for sockets; ``ENOSYS`` for
``clone3`` so that the C library falls back to ``clone``, whose flags a filter can see).
System calls of a foreign ABI (i386 or x32 on x86_64, arm32 on aarch64) all fail with
``ENOSYS``. This module must never allow a call by default that it cannot describe: every
rule is in :data:`RULES`, and anything not listed is allowed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# --- constants from <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>, <linux/sched.h> ---

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_JA = 0x05  # BPF_JMP | BPF_JA
_RET = 0x06  # BPF_RET | BPF_K

RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian:
# the low 32 bits of args[i] are at 16 + 8 i, which is all the kernel reads of an int argument).
_OFF_NR = 0
_OFF_ARCH = 4


def _arg_low(i: int) -> int:
    return 16 + 8 * i


AF_UNIX = 1
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
CLONE_THREAD = 0x00010000
# Every namespace flag clone() accepts (CLONE_NEWTIME shares its bit with the exit signal in
# clone() and only means "new time namespace" for clone3/unshare, which are refused anyway).
CLONE_NAMESPACES = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)
PERSONALITY_QUERY = 0xFFFFFFFF

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


@dataclass(frozen=True)
class Rule:
    """One refused (or argument-checked) system call and its numbers per architecture."""

    name: str
    x86_64: int | None
    aarch64: int | None
    errno: int = errno.EPERM
    check: str = ""  # "" refuse outright; "socket" | "clone" | "ioctl" | "personality"
    fork_only: bool = False  # refused only when new processes are refused


def _r(name: str, x86: int | None, arm: int | None, **kw: object) -> Rule:
    return Rule(name, x86, arm, **kw)  # type: ignore[arg-type]


RULES: tuple[Rule, ...] = (
    # network: only AF_UNIX sockets (namespaces leave AF_VSOCK, and netlink is an attack surface)
    _r("socket", 41, 198, errno=errno.EAFNOSUPPORT, check="socket"),
    _r("socketpair", 53, 199, errno=errno.EAFNOSUPPORT, check="socket"),
    # other processes' memory and state
    _r("ptrace", 101, 117),
    _r("process_vm_readv", 310, 270),
    _r("process_vm_writev", 311, 271),
    _r("process_madvise", 440, 440),
    _r("kcmp", 312, 272),
    _r("pidfd_getfd", 438, 438),
    # kernel keyring
    _r("keyctl", 250, 219),
    _r("add_key", 248, 217),
    _r("request_key", 249, 218),
    # large kernel attack surfaces nobody's homework needs
    _r("bpf", 321, 280),
    _r("perf_event_open", 298, 241),
    _r("userfaultfd", 323, 282),
    _r("io_uring_setup", 425, 425),
    _r("io_uring_enter", 426, 426),
    _r("io_uring_register", 427, 427),
    # mounts and namespaces
    _r("mount", 165, 40),
    _r("umount2", 166, 39),
    _r("pivot_root", 155, 41),
    _r("chroot", 161, 51),
    _r("unshare", 272, 97),
    _r("setns", 308, 268),
    _r("open_tree", 428, 428),
    _r("move_mount", 429, 429),
    _r("fsopen", 430, 430),
    _r("fsconfig", 431, 431),
    _r("fsmount", 432, 432),
    _r("fspick", 433, 433),
    _r("mount_setattr", 442, 442),
    _r("open_by_handle_at", 304, 265),
    _r("name_to_handle_at", 303, 264),
    # processes: clone3 hides its flags in memory a filter cannot read, so it reports ENOSYS
    # and the C library falls back to clone(), whose flags are checked here.
    _r("clone", 56, 220, check="clone"),
    _r("clone3", 435, 435, errno=errno.ENOSYS),
    _r("fork", 57, None, fork_only=True),
    _r("vfork", 58, None, fork_only=True),
    # terminals: pushing characters into the grader's terminal input
    _r("ioctl", 16, 29, check="ioctl"),
    # machine administration (the kernel refuses most without capabilities; belt and braces)
    _r("personality", 135, 92, check="personality"),
    _r("kexec_load", 246, 104),
    _r("kexec_file_load", 320, 294),
    _r("init_module", 175, 105),
    _r("finit_module", 313, 273),
    _r("delete_module", 176, 106),
    _r("acct", 163, 89),
    _r("swapon", 167, 224),
    _r("swapoff", 168, 225),
    _r("reboot", 169, 142),
    _r("syslog", 103, 116),
    _r("quotactl", 179, 60),
    _r("vhangup", 153, 58),
    _r("modify_ldt", 154, None),
    _r("iopl", 172, None),
    _r("ioperm", 173, None),
    _r("uselib", 134, None),
)

_ARCHES = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}


def native_arch() -> str | None:
    """``"x86_64"`` or ``"aarch64"`` when this machine can use the filter, else None."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if machine in _ARCHES and sys.byteorder == "little":
        return machine
    return None


def refused_calls(*, allow_fork: bool = False) -> list[str]:
    """Names of the system calls the filter refuses or restricts on this machine."""
    arch = native_arch()
    return [
        r.name
        for r in RULES
        if getattr(r, arch or "x86_64") is not None and (not r.fork_only or not allow_fork)
    ]


# --- a tiny assembler: labels, forward jumps ------------------------------------------------


class _Asm:
    def __init__(self) -> None:
        self.items: list[tuple[int, int | str, int | str, int | str] | str] = []

    def label(self, name: str) -> None:
        self.items.append(name)

    def op(self, code: int, k: int | str = 0, jt: int | str = 0, jf: int | str = 0) -> None:
        self.items.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        where: dict[str, int] = {}
        count = 0
        for item in self.items:
            if isinstance(item, str):
                where[item] = count
            else:
                count += 1
        out = bytearray()
        pc = 0
        for item in self.items:
            if isinstance(item, str):
                continue
            code, jt, jf, k = item

            def rel(target: int | str, pc: int = pc, wide: bool = False) -> int:
                if isinstance(target, int):
                    return target
                offset = where[target] - (pc + 1)
                if offset < 0 or (not wide and offset > 255):
                    raise ValueError(f"jump to {target} out of range ({offset})")
                return offset

            k_value = rel(k, wide=True) if code == _JA else k
            assert isinstance(k_value, int)
            out += struct.pack("=HBBI", code, rel(jt), rel(jf), k_value & 0xFFFFFFFF)
            pc += 1
        if pc > 4096:
            raise ValueError("seccomp program longer than the kernel accepts")
        return bytes(out)


def build_filter(
    *, allow_fork: bool = False, arches: Sequence[str] = ("x86_64", "aarch64")
) -> bytes:
    """The filter program: ``struct sock_filter`` records in native byte order."""
    asm = _Asm()
    asm.op(_LD_W_ABS, _OFF_ARCH)
    for arch in arches:
        asm.op(_JEQ, _ARCHES[arch], jt=f"arch_{arch}")
    asm.op(_RET, RET_ERRNO | errno.ENOSYS)  # a foreign ABI (int 0x80, arm32): nothing works
    checks: set[str] = set()
    for arch in arches:
        asm.label(f"arch_{arch}")
        asm.op(_LD_W_ABS, _OFF_NR)
        if arch == "x86_64":
            asm.op(_JGE, X32_SYSCALL_BIT, jt=0, jf=1)
            asm.op(_RET, RET_ERRNO | errno.ENOSYS)
        for rule in RULES:
            nr = getattr(rule, arch)
            if nr is None or (rule.fork_only and allow_fork):
                continue
            asm.op(_JEQ, nr, jt=0, jf=1)
            if rule.check:
                checks.add(rule.check)
                asm.op(_JA, f"check_{rule.check}")
            else:
                asm.op(_RET, RET_ERRNO | rule.errno)
        asm.op(_RET, RET_ALLOW)
    if "socket" in checks:
        asm.label("check_socket")
        asm.op(_LD_W_ABS, _arg_low(0))
        asm.op(_JEQ, AF_UNIX, jt="allow")
        asm.op(_RET, RET_ERRNO | errno.EAFNOSUPPORT)
    if "clone" in checks:
        asm.label("check_clone")
        asm.op(_LD_W_ABS, _arg_low(0))
        asm.op(_JSET, CLONE_NAMESPACES, jt="eperm")
        if not allow_fork:
            asm.op(_JSET, CLONE_THREAD, jt="allow")
            asm.op(_RET, RET_ERRNO | errno.EPERM)
        asm.op(_RET, RET_ALLOW)
    if "ioctl" in checks:
        asm.label("check_ioctl")
        asm.op(_LD_W_ABS, _arg_low(1))
        asm.op(_JEQ, TIOCSTI, jt="eperm")
        asm.op(_JEQ, TIOCLINUX, jt="eperm")
        asm.op(_RET, RET_ALLOW)
    if "personality" in checks:
        asm.label("check_personality")
        asm.op(_LD_W_ABS, _arg_low(0))
        asm.op(_JEQ, PERSONALITY_QUERY, jt="allow")
        asm.op(_JEQ, 0, jt="allow")
        asm.op(_RET, RET_ERRNO | errno.EPERM)
    asm.label("allow")
    asm.op(_RET, RET_ALLOW)
    asm.label("eperm")
    asm.op(_RET, RET_ERRNO | errno.EPERM)
    return asm.assemble()


def installer(program: bytes) -> Callable[[], None]:
    """A function that loads ``program`` into the calling process (for a pre-exec hook).

    Everything is allocated here, in the parent, so that the hook itself only makes two
    ``prctl`` calls after ``fork``.
    """

    class _Fprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _Fprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)

    def install() -> None:
        keep = (buffer, fprog)  # referenced so the memory outlives the closure's creation
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(keep[1]), 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot load the seccomp filter: {os.strerror(err)}")

    return install
