# %% [markdown]
# Attack, issue 6 list 7: the network and the kernel's privileged interfaces. `sigmoid` is
# honest (2 points). One cell tries each way out and `forward` reports the outcome of every
# probe through an error message: "ESCAPED:<probe>" would mean the sandbox let it through. The
# test replaces __NET__ with the addresses of listeners it opened on the host.

# %%
__assignment__ = "backprop"
import ctypes
import errno
import fcntl
import os
import platform
import resource
import socket
import termios

import numpy as np

NET = dict(line.split("=", 1) for line in r"""__NET__""".splitlines() if "=" in line)


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# %%
results = {}


def probe(name, attempt):
    """Run one attempt: returning normally means it worked, which it must not."""
    try:
        attempt()
        results[name] = "ESCAPED"
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    except (ValueError, TypeError) as exc:
        results[name] = type(exc).__name__


def connect(family, kind, address):
    def attempt():
        s = socket.socket(family, kind)
        s.settimeout(1.0)
        try:
            s.connect(address)
            s.sendall(b"hello from the sandbox")
            if kind == socket.SOCK_DGRAM:
                s.recv(10)  # a reply from the host listener would prove the datagram arrived
        finally:
            s.close()

    return attempt


def open_socket(family, kind, proto=0):
    return lambda: socket.socket(family, kind, proto).close()


probe("tcp4", connect(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", int(NET.get("tcp4", 9)))))
probe("tcp6", connect(socket.AF_INET6, socket.SOCK_STREAM, ("::1", int(NET.get("tcp6", 9)))))
probe("udp4", connect(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", int(NET.get("udp4", 9)))))
probe("udp6", connect(socket.AF_INET6, socket.SOCK_DGRAM, ("::1", int(NET.get("udp6", 9)))))
probe("abstract_unix", connect(socket.AF_UNIX, socket.SOCK_STREAM,
                               "\0" + NET.get("abstract", "grader-none")))
probe("dns", lambda: socket.getaddrinfo("example.com", 80))
probe("vsock", open_socket(40, socket.SOCK_STREAM))
probe("netlink", open_socket(16, socket.SOCK_RAW, 0))
probe("packet", open_socket(17, socket.SOCK_RAW, 0))
probe("inet_raw", open_socket(socket.AF_INET, socket.SOCK_RAW, 1))

ARM = platform.machine() in ("aarch64", "arm64")
NR = {  # x86_64, aarch64
    "ptrace": (101, 117), "unshare": (272, 97), "clone": (56, 220), "keyctl": (250, 219),
    "add_key": (248, 217), "io_uring_setup": (425, 425), "bpf": (321, 280), "mount": (165, 40),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "process_vm_readv": (310, 270),
    "personality": (135, 92), "setns": (308, 268), "setuid": (105, 146), "chroot": (161, 51),
}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def syscall(name, *args):
    def attempt():
        argv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
        rc = libc.syscall(ctypes.c_long(NR[name][ARM]), *argv)
        if rc == -1:
            raise OSError(ctypes.get_errno(), name)
        if name == "clone" and rc == 0:
            os._exit(0)

    return attempt


CLONE_NEWUSER = 0x10000000
buf = ctypes.create_string_buffer(256)
probe("unshare_user", syscall("unshare", CLONE_NEWUSER))
probe("unshare_net", syscall("unshare", 0x40000000))
probe("clone_newuser", syscall("clone", CLONE_NEWUSER | 17, 0, 0, 0, 0))
probe("ptrace_attach_1", syscall("ptrace", 16, 1, 0, 0))
probe("ptrace_traceme", syscall("ptrace", 0, 0, 0, 0))
probe("keyctl", syscall("keyctl", 0, -3, 1))
probe("add_key", syscall("add_key", b"user", b"grader", b"secret", 6, -3))
probe("io_uring", syscall("io_uring_setup", 4, buf))
probe("bpf", syscall("bpf", 5, buf, 128))
probe("mount", syscall("mount", b"none", b"/tmp", b"tmpfs", 0, 0))
probe("perf_event_open", syscall("perf_event_open", buf, 0, -1, -1, 0))
probe("userfaultfd", syscall("userfaultfd", 0))
probe("process_vm_readv", syscall("process_vm_readv", 1, buf, 1, buf, 1, 0))
probe("personality", syscall("personality", 0x0040000))
probe("setns", syscall("setns", 0, 0))
probe("setuid_0", syscall("setuid", 0))
probe("chroot", syscall("chroot", b"/tmp"))
for fd_name, opener in (("stdin", lambda: 0), ("stderr", lambda: 2),
                        ("dev_tty", lambda: os.open("/dev/tty", os.O_RDWR))):
    probe("tiocsti_" + fd_name, lambda opener=opener: fcntl.ioctl(opener(), termios.TIOCSTI, b"x"))
probe("proc_1_mem", lambda: open("/proc/1/mem", "rb").read(1))
for limit in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_FSIZE"):
    which = getattr(resource, limit)

    def raise_hard(which=which):
        resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    probe("raise_" + limit, raise_hard)

REPORT = "PROBES " + " ".join(f"{k}={v}" for k, v in sorted(results.items()))


# %%
def forward(x, w1, b1, w2, b2):
    raise RuntimeError(REPORT)
