"""Children forked by a zygote (batch workers) are as isolated as children started directly.

A zygote is one sandbox for many submissions, so what each child gets of its own is the point:
its own PID namespace (it is PID 1 and sees nothing else), its own /tmp and /proc, no
capabilities, the seccomp filter, fresh random state; and nothing a child does reaches the
zygote or the next child.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from grader.errors import StudentTimeout
from grader.grading import SandboxFactory
from grader.remote import Runner, SubmissionProxy, Timeouts
from grader.sandbox.launcher import Limits
from grader.sandbox.process import Zygote
from grader.submission import Cell

pytestmark = pytest.mark.slow

LIMITS = Limits()

PROBE = """
import ctypes, os, random, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
libc = ctypes.CDLL(None, use_errno=True)
mount = libc.mount(b"tmpfs", b"/mnt", b"tmpfs", 0, None)
info = {
    "pid": os.getpid(),
    "processes": sorted(p for p in os.listdir("/proc") if p.isdigit()),
    "tmp": sorted(os.listdir("/tmp")),
    "cap_eff": status["CapEff"].strip(),
    "cap_bnd": status["CapBnd"].strip(),
    "seccomp": status["Seccomp"].strip(),
    "uid": os.getuid(),
    "mount": [mount, ctypes.get_errno()],
    "random": random.random(),
    "cwd": os.getcwd(),
}
with open("/tmp/left-behind", "w") as f:
    f.write("from an earlier submission")
"""


@pytest.fixture
def factory() -> Iterator[SandboxFactory]:
    made = SandboxFactory("bubblewrap", allow_fallback=False, zygote=True)
    yield made
    made.close()


def run(factory: SandboxFactory, code: str, **timeouts: float) -> tuple[Runner, SubmissionProxy]:
    runner = Runner(
        factory.launcher(LIMITS),
        [Cell(0, "code", "", code=code, filename="<cell>")],
        module_name="__main__",
        timeouts=Timeouts(**timeouts),
        zygote=lambda: factory.zygote(LIMITS),
    )
    runner.start()
    return runner, SubmissionProxy(runner)


def probe(factory: SandboxFactory) -> dict[str, Any]:
    runner, proxy = run(factory, PROBE)
    try:
        assert runner.child is not None and runner.child.zygote is not None  # really forked
        info: dict[str, Any] = proxy.get("info")
        return info
    finally:
        runner.close()


def test_each_child_has_namespaces_of_its_own_and_no_privilege(factory: SandboxFactory) -> None:
    first, second = probe(factory), probe(factory)
    for info in (first, second):
        assert info["pid"] == 1 and info["processes"] == ["1"]  # nothing else is visible
        assert info["tmp"] == []  # the earlier child's file is not there
        assert info["cap_eff"] == "0000000000000000"
        assert info["cap_bnd"] == "0000000000000000"
        assert info["seccomp"] == "2"  # the filter is loaded
        assert info["mount"] == [-1, 1]  # mount refused with EPERM
        assert info["uid"] != 0  # never root inside, whoever runs the grader
        assert info["cwd"] == "/tmp"
    assert first["random"] != second["random"]  # not the zygote's random state, copied
    assert len(factory._zygotes) == 1  # one zygote served both


def test_a_child_cannot_reach_the_zygote(factory: SandboxFactory) -> None:
    attack = """
import os, signal
for target in (0, -1, 1, os.getppid()):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
try:
    os.killpg(os.getpgid(0), signal.SIGKILL)
except OSError:
    pass
"""
    runner, _ = run(factory, attack)
    runner.close()
    zygote = factory.zygote(LIMITS)
    assert zygote is not None and zygote.alive
    assert probe(factory)["processes"] == ["1"]
    assert factory._zygote_starts == 1  # the same zygote, never restarted


def test_a_hung_child_is_killed_and_the_next_one_is_fresh(factory: SandboxFactory) -> None:
    code = "def spin():\n    while True:\n        pass\n\ndef ok():\n    return 7\n"
    runner, proxy = run(factory, code, call=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StudentTimeout):
            proxy.spin()
        assert time.monotonic() - started < 3
        runner.current_check_error = None
        assert proxy.ok() == 7  # a restarted child, forked again
        assert runner.restarts == 1
    finally:
        runner.close()
    assert probe(factory)["processes"] == ["1"]


def test_a_dead_child_reports_its_exit_code(factory: SandboxFactory) -> None:
    runner, _ = run(factory, "import os\nos._exit(3)\n")
    try:
        assert runner.cell_runs[0].ok is False
        assert "exited with code 3" in runner.cell_runs[0].error_message
    finally:
        runner.close()


def test_a_dead_zygote_is_replaced(factory: SandboxFactory) -> None:
    first = factory.zygote(LIMITS)
    assert first is not None
    first.close()
    assert probe(factory)["pid"] == 1
    second = factory.zygote(LIMITS)
    assert second is not None and second is not first and second.alive


def test_without_a_zygote_children_start_directly(
    factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine where the zygote cannot start still grades, with directly started children."""
    from grader import grading
    from grader.errors import SandboxUnavailable

    def refuse(*args: object) -> Zygote:
        raise SandboxUnavailable("no nested namespaces here")

    monkeypatch.setattr(grading, "Zygote", refuse)
    runner, proxy = run(factory, "x = 41 + 1\n")
    try:
        assert runner.child is not None and runner.child.zygote is None
        assert proxy.get("x") == 42
    finally:
        runner.close()
    assert factory.zygote(LIMITS) is None  # not tried again for every child


def test_zygote_can_be_forced_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_ZYGOTE", "0")
    assert SandboxFactory("bubblewrap", allow_fallback=False, zygote=True).use_zygote is False
    monkeypatch.setenv("GRADER_ZYGOTE", "1")
    assert SandboxFactory("bubblewrap", allow_fallback=False).use_zygote is True
    monkeypatch.delenv("GRADER_ZYGOTE")
    assert SandboxFactory("bubblewrap", allow_fallback=False).use_zygote is False


class _BrokenZygote(Zygote):
    """A zygote that accepts every spawn but whose children die before they serve (as where
    the kernel refuses nested namespaces)."""

    def __init__(self) -> None:  # no process at all
        self.closed_by_caller = False

    @property
    def alive(self) -> bool:
        return not self.closed_by_caller

    def spawn(self, fds: tuple[int, int, int], timeout: float) -> int:
        return 1  # the descriptors are not kept: the child "dies" at once

    def wait(self, cid: int, timeout: float) -> dict[str, int] | None:
        return {"exit": 127}

    def kill(self, cid: int) -> dict[str, int] | None:
        return {"exit": 127}

    def close(self) -> None:
        self.closed_by_caller = True


def test_a_zygote_whose_children_cannot_start_is_dropped_for_a_direct_child() -> None:
    from grader.sandbox.launcher import Launcher, Mode
    from grader.sandbox.process import ChildProcess

    broken = _BrokenZygote()
    init = {"module_name": "__main__", "preload": [], "limits": {}}
    child = ChildProcess(Launcher(Mode.BUBBLEWRAP), init=init, timeout=20, zygote=broken)
    try:
        assert child.zygote is None and child.proc is not None  # started directly
        reply, _ = child.request({"op": "cell", "source": "x = 6 * 7"}, timeout=10)
        assert reply["ok"] is True
    finally:
        child.close()
    assert broken.closed_by_caller  # and not offered again


def test_a_clone_the_kernel_refuses_raises_and_leaves_python_as_it_was() -> None:
    from grader.sandbox import zygote

    clone_thread = 0x00010000  # without CLONE_VM and CLONE_SIGHAND: EINVAL, and no fork
    with pytest.raises(OSError, match="clone"):
        zygote._clone(clone_thread | zygote.CLONE_NEWPID)
    # The import lock that PyOS_BeforeFork took is released again: a thread can import.
    sys.modules.pop("colorsys", None)
    done = threading.Event()
    threading.Thread(target=lambda: (__import__("colorsys"), done.set()), daemon=True).start()
    assert done.wait(10)


def test_a_zygote_imports_sympy_only_for_a_batch_that_names_it() -> None:
    from grader.sandbox.launcher import ZYGOTE_PRELOAD, zygote_preload

    plain = b'{"source": ["import numpy as np\\n", "def f(x):\\n", "    return x\\n"]}'
    uses = b'{"source": ["import sympy as sp\\n"]}'
    assert zygote_preload([]) == ("numpy",)
    assert zygote_preload([plain, plain]) == ("numpy",)
    assert zygote_preload([plain, uses]) == ZYGOTE_PRELOAD == ("numpy", "sympy")
    assert zygote_preload(iter([b"from sympy import Symbol"])) == ("numpy", "sympy")


def test_a_child_of_a_zygote_without_sympy_imports_it_itself() -> None:
    """The preload is only a head start: a submission that imports SymPy where the batch's scan
    did not see it (``__import__("sym" + "py")``) still runs, importing it in its own child."""
    made = SandboxFactory("bubblewrap", allow_fallback=False, zygote=True, preload=("numpy",))
    try:
        code = (
            "import sys\n"
            "before = 'sympy' in sys.modules\n"
            "sp = __import__('sym' + 'py')\n"
            "value = str(sp.diff(sp.Symbol('x') ** 2))\n"
        )
        runner, proxy = run(made, code)
        try:
            assert runner.child is not None and runner.child.zygote is not None  # really forked
            assert proxy.get("before") is False  # the zygote did not import it
            assert proxy.get("value") == "2*x"
        finally:
            runner.close()
    finally:
        made.close()
