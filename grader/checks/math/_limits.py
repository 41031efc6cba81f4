"""Runs a slow computer-algebra question in a forked process under a time and memory limit.

The child's only output is its exit code (0 yes, 1 no, anything else: failed), so nothing it
computed is trusted or unpickled. The parent kills it by its process id when time is up. On
systems without ``fork`` the answer is simply "not known".
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

__all__ = ["ask_limited"]

_POLL = 0.005


def _child(question: Callable[[], bool], seconds: float, memory_bytes: int) -> None:
    code = 3
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        cpu = int(seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        code = 0 if question() else 1
    except BaseException:
        code = 2
    finally:
        os._exit(code)


def ask_limited(
    question: Callable[[], bool], *, seconds: float, memory_bytes: int = 1 << 30
) -> bool | None:
    """True or False as ``question()`` answered, or None if it failed or ran out of time."""
    if not hasattr(os, "fork") or seconds <= 0:
        return None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child process
        _child(question, seconds, memory_bytes)
    deadline = time.monotonic() + seconds
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            code = os.waitstatus_to_exitcode(status)
            return {0: True, 1: False}.get(code)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(_POLL)
