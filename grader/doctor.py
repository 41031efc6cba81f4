"""``grade doctor``: can this machine grade other people's code safely?

Runs in the trusted parent. It reports which sandbox mode the machine supports and why
(bubblewrap, user namespaces, the runtime the sandbox user must reach, the seccomp filter),
then plants canaries (a secret environment variable, secret files in a temporary folder and in
the grader's home folder, a TCP listener on 127.0.0.1) and runs a probe submission in the real
sandbox that tries to reach them, fork many processes, allocate 2 GB and write to ``/``. Every
verdict is the parent's: a secret counts as read when its value appears anywhere in what came
back, a connection when the listener accepted one. It never leaves a canary behind and never
weakens the sandbox to make a check pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SandboxUnavailable
from .sandbox import seccomp, wire
from .sandbox.launcher import Launcher, Limits, Mode, unreachable_component
from .sandbox.process import ChildGone, ChildProcess, Zygote, ZygoteError

ENV_NAME = "GRADER_DOCTOR_SECRET"
PROBE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Fact:
    """One line about the machine; ``ok=False`` when it stops the sandbox from working."""

    name: str
    text: str
    ok: bool = True


@dataclass(frozen=True)
class Verdict:
    """One canary check: did the sandbox hold, and the one-line reason."""

    name: str
    held: bool
    reason: str


# --- facts about the machine --------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def namespace_fact() -> Fact:
    """Whether unprivileged user namespaces are allowed, from the kernel's switches."""
    max_ns = _read("/proc/sys/user/max_user_namespaces")
    debian = _read("/proc/sys/kernel/unprivileged_userns_clone")
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if max_ns == "0":
        return Fact(
            "namespaces",
            "user namespaces are disabled (user.max_user_namespaces=0): "
            "`sudo sysctl user.max_user_namespaces=15000`",
            ok=False,
        )
    if debian == "0" and os.geteuid() != 0:
        return Fact(
            "namespaces",
            "unprivileged user namespaces are disabled: "
            "`sudo sysctl kernel.unprivileged_userns_clone=1`",
            ok=False,
        )
    if apparmor == "1":
        profile = Path("/etc/apparmor.d/bwrap-userns-restrict")
        if not profile.exists():
            return Fact(
                "namespaces",
                "AppArmor restricts unprivileged user namespaces "
                "(Ubuntu 23.10+) and no bubblewrap profile is installed: "
                "`sudo apt install apparmor-profiles && sudo ln -s "
                "/usr/share/apparmor/extra-profiles/bwrap-userns-restrict "
                "/etc/apparmor.d/ && sudo systemctl reload apparmor`",
                ok=False,
            )
        return Fact(
            "namespaces",
            "AppArmor restricts user namespaces; the bwrap-userns-restrict profile is installed",
        )
    return Fact("namespaces", f"user namespaces allowed (max_user_namespaces={max_ns or '?'})")


def bwrap_fact() -> Fact:
    path = shutil.which("bwrap")
    if path is None:
        return Fact(
            "bubblewrap",
            "not installed: `sudo apt-get install bubblewrap` (Debian, "
            "Ubuntu) or `sudo dnf install bubblewrap` (Fedora)",
            ok=False,
        )
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Fact("bubblewrap", f"{path} cannot run: {exc}", ok=False)
    setuid = os.stat(path).st_mode & 0o4000
    note = " (setuid)" if setuid else ""
    return Fact("bubblewrap", f"{path}, {out or 'unknown version'}{note}")


def runtime_fact(launcher: Launcher) -> Fact:
    roots = ", ".join(launcher.runtime.roots) or "(system Python)"
    if launcher.run_as is None:
        return Fact("runtime", f"{launcher.runtime.python}; read-only in the sandbox: {roots}")
    hidden = [r for r in launcher.runtime.roots if unreachable_component(r, launcher.run_as)]
    if not hidden:
        return Fact("runtime", f"{launcher.runtime.python}; reachable by 'nobody'")
    blocker = unreachable_component(hidden[0], launcher.run_as)
    if launcher.mode is Mode.BUBBLEWRAP:
        return Fact(
            "runtime",
            f"{hidden[0]} is not reachable by 'nobody' ({blocker} is closed to "
            "other users); shown read-only through a private mount namespace",
        )
    return Fact("runtime", f"{hidden[0]} is not reachable by 'nobody' ({blocker})", ok=False)


def seccomp_fact(launcher: Launcher, status: str | None) -> Fact:
    program = launcher.seccomp_program
    if program is None:
        return Fact(
            "seccomp",
            f"no filter for this architecture ({platform.machine()}): namespaces and limits only",
            ok=False,
        )
    calls = seccomp.refused_calls(allow_fork=launcher.limits.allow_fork)
    text = f"filter of {len(program) // 8} instructions restricting {len(calls)} system calls"
    if status is None:
        return Fact("seccomp", text + "; not confirmed (the probe did not run)", ok=False)
    if status != "2":
        return Fact("seccomp", text + f", but the child reports Seccomp: {status}", ok=False)
    return Fact("seccomp", text + "; loaded in the child (Seccomp: 2)")


ZYGOTE_PROBE = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
facts = [os.getpid(), sorted(os.listdir("/proc")).count("2"), status["CapEff"].strip(),
         status["Seccomp"].strip()]
"""


def zygote_fact(launcher: Launcher) -> Fact:
    """Can batch workers fork children from a zygote here, each in namespaces of its own?"""
    from .sandbox.launcher import ZYGOTE_PRELOAD

    slow = "batch workers start every child directly (correct, but slower)"
    forced = os.environ.get("GRADER_ZYGOTE", "").strip()
    if forced == "0":
        return Fact("zygote", f"turned off by GRADER_ZYGOTE=0: {slow}")
    try:
        zygote = Zygote(launcher, ZYGOTE_PRELOAD)
    except SandboxUnavailable as exc:
        return Fact("zygote", f"cannot start ({exc}); {slow}")
    child = None
    try:
        init = {"module_name": "__main__", "preload": [], "limits": {}}
        child = ChildProcess(launcher, init=init, timeout=PROBE_TIMEOUT, zygote=zygote)
        if child.zygote is None:
            return Fact("zygote", f"could not fork a child; {slow}")
        child.request({"op": "cell", "source": ZYGOTE_PROBE}, timeout=PROBE_TIMEOUT)
        reply, blobs = child.request({"op": "get", "name": "facts"}, timeout=PROBE_TIMEOUT)
        facts = wire.decode_value(reply.get("value"), blobs)
    except (ChildGone, ZygoteError, wire.WireError) as exc:
        return Fact("zygote", f"its child failed ({exc}); {slow}")
    finally:
        if child is not None:
            child.close()
        zygote.close()
    if facts != [1, 0, "0000000000000000", "2"]:
        return Fact("zygote", f"its child is not isolated as expected ({facts}); {slow}")
    who = "every grade (GRADER_ZYGOTE=1) forks" if forced == "1" else "batch workers fork"
    return Fact(
        "zygote",
        f"{who} each child from a pre-imported zygote; the child is PID 1 of its "
        "own namespaces, with its own /tmp, no capabilities and the seccomp filter",
    )


# --- canaries -------------------------------------------------------------------------------------


class Listener:
    """A TCP listener on the host's loopback: connections wait in its backlog to be counted."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self._accepted = 0

    @property
    def accepted(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # BlockingIOError: nobody else knocked
                return self._accepted
            conn.close()
            self._accepted += 1

    def close(self) -> None:
        self.sock.close()


@dataclass
class Canaries:
    token: str
    marker: str
    tmp_file: Path
    home_file: Path | None
    listener: Listener


@contextmanager
def planted() -> Iterator[Canaries]:
    """Plant every canary; remove them all afterwards, whatever happens."""
    token = "GRADERDOCTOR" + secrets.token_hex(12)
    marker = "grdoc" + secrets.token_hex(5)
    folder = Path(tempfile.mkdtemp(prefix="grader-doctor-"))
    tmp_file = folder / "secret.txt"
    tmp_file.write_text(token + "\n")
    os.chmod(folder, 0o755)
    os.chmod(tmp_file, 0o644)  # readable by everyone: only the sandbox may stand in the way
    home_file: Path | None = Path.home() / f".grader-doctor-{marker}"
    try:
        assert home_file is not None
        home_file.write_text(token + "\n")
        os.chmod(home_file, 0o644)
    except OSError:
        home_file = None
    old_env = os.environ.get(ENV_NAME)
    os.environ[ENV_NAME] = token
    listener = Listener()
    try:
        yield Canaries(token, marker, tmp_file, home_file, listener)
    finally:
        listener.close()
        if old_env is None:
            os.environ.pop(ENV_NAME, None)
        else:
            os.environ[ENV_NAME] = old_env
        if home_file is not None:
            home_file.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


PROBE = r"""
import errno, os, socket
R = {}
def _why(exc):
    return "refused:" + errno.errorcode.get(exc.errno or 0, type(exc).__name__)
def _read(path):
    try:
        with open(path, "rb") as f:
            return "read:" + f.read(4096).decode("latin-1")
    except OSError as exc:
        return _why(exc)
R["environ"] = repr(dict(os.environ))
R["proc1_environ"] = _read("/proc/1/environ")
R["self_environ"] = _read("/proc/self/environ")
R["tmp_file"] = _read(TMP_FILE)
R["home_file"] = _read(HOME_FILE) if HOME_FILE else "refused:not planted"
R["shadow"] = _read("/etc/shadow")
R["seccomp"] = next((l.split(":", 1)[1].strip() for l in open("/proc/self/status")
                     if l.startswith("Seccomp:")), "?")
R["hostname"] = socket.gethostname()
R["pid"] = os.getpid()
try:
    s = socket.create_connection(("127.0.0.1", PORT), timeout=1.0)
    s.sendall(b"probe")
    s.close()
    R["tcp"] = "connected"
except OSError as exc:
    R["tcp"] = _why(exc)
pids = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            try:
                os.execv("/bin/sleep", [MARKER, "60"])
            finally:
                os._exit(0)
        pids.append(pid)
    R["fork"] = "forked 200"
except OSError as exc:
    R["fork"] = _why(exc) + f" after {len(pids)}"
R["forked"] = len(pids)
for pid in pids:
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
try:
    block = bytearray(2 << 30)
    block[-1] = 1
    R["memory"] = "allocated 2 GB"
    del block
except MemoryError:
    R["memory"] = "refused:MemoryError"
try:
    with open("/" + MARKER, "w") as f:
        f.write("x")
    R["write_root"] = "written"
except OSError as exc:
    R["write_root"] = _why(exc)
"""


def probe_source(c: Canaries) -> str:
    home = str(c.home_file) if c.home_file else ""
    return (
        f"TMP_FILE = {str(c.tmp_file)!r}\nHOME_FILE = {home!r}\nPORT = {c.listener.port}\n"
        f"MARKER = {c.marker!r}\n" + PROBE
    )


def run_probe(launcher: Launcher, c: Canaries) -> tuple[dict[str, Any], str]:
    """Run the probe in a fresh sandbox; its results, plus everything it sent, as text."""
    init = {
        "module_name": "__main__",
        "preload": [],
        "limits": launcher.limits.as_rlimits(with_nproc=True),
    }
    child = ChildProcess(launcher, init=init, timeout=PROBE_TIMEOUT)
    try:
        reply, _ = child.request(
            {"op": "cell", "source": probe_source(c), "filename": "<doctor probe>"},
            timeout=PROBE_TIMEOUT,
        )
        if not reply.get("ok"):
            raise ChildGone(f"the probe failed: {reply.get('error')}")
        got, _ = child.request({"op": "get", "name": "R"}, timeout=PROBE_TIMEOUT)
    finally:
        child.close()
    everything = repr(reply) + repr(got) + bytes(child.stderr).decode("utf-8", "replace")
    value = got.get("value")
    results: dict[str, Any] = {}
    if isinstance(value, dict) and value.get("t") == "dict":
        for pair in value.get("v", []):
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str):
                results[pair[0]] = pair[1]
    return results, everything


def leftover_processes(marker: str) -> list[int]:
    """Processes on this machine whose name or command line carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "comm").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(entry.name))
    return found


def _verdict(name: str, held: bool, if_held: str, if_not: str) -> Verdict:
    return Verdict(name, held, if_held if held else if_not)


def judge(results: dict[str, Any], everything: str, c: Canaries, limits: Limits) -> list[Verdict]:
    """The parent's verdicts: a secret counts as read if its value shows up anywhere."""

    def refused(key: str) -> tuple[bool, str]:
        value = str(results.get(key, "missing"))
        return value.startswith("refused:") and c.token not in value, value.split(":", 1)[-1][:60]

    env = str(results.get("environ", "")) + str(results.get("self_environ", ""))
    pid1_env = str(results.get("proc1_environ", ""))
    names = sorted(v.split("=", 1)[0] for v in pid1_env.removeprefix("read:").split("\0") if v)
    out = [
        _verdict(
            "secret environment variable",
            c.token not in env,
            "not in the probe's environment",
            "visible to the probe",
        ),
        _verdict(
            "/proc/1/environ",
            c.token not in pid1_env,
            f"holds no secret ({', '.join(names)[:60] or pid1_env[:40]})",
            "shows the secret",
        ),
    ]
    for key, label in (
        ("tmp_file", "secret file in a temp folder"),
        ("home_file", "secret file in the grader's home"),
        ("shadow", "/etc/shadow"),
    ):
        ok, why = refused(key)
        out.append(_verdict(label, ok, f"refused ({why})", "opened by the probe"))
    tcp = str(results.get("tcp", "?"))
    out.append(
        _verdict(
            "TCP to 127.0.0.1",
            c.listener.accepted == 0 and tcp != "connected",
            f"no connection ({tcp.split(':')[-1]})",
            f"connected; the listener accepted {c.listener.accepted}",
        )
    )
    forked = results.get("forked")
    left = leftover_processes(c.marker)
    contained = isinstance(forked, int) and forked <= limits.processes and not left
    started = f"{forked} of 200 started" + ("" if forked else ": forking is refused")
    out.append(
        _verdict("fork many processes", contained, started, f"{started}, {len(left)} left behind")
    )
    ok, why = refused("memory")
    out.append(_verdict("allocate 2 GB", ok, f"refused ({why})", "the probe allocated 2 GB"))
    ok, why = refused("write_root")
    on_host = Path("/" + c.marker)
    wrote = on_host.exists()
    on_host.unlink(missing_ok=True)
    out.append(
        _verdict(
            "write to /", ok and not wrote, f"refused ({why})", "the probe wrote a file into /"
        )
    )
    out.append(
        _verdict(
            "nothing else leaked",
            c.token not in everything,
            "the secret appears nowhere in what came back",
            "the secret appeared in the probe's output",
        )
    )
    return out


# --- the command ----------------------------------------------------------------------------------


def diagnose(mode: Mode) -> tuple[list[Fact], list[Verdict], str | None]:
    """Facts, canary verdicts and, when the sandbox cannot start, what to change."""
    user = (
        "root: the sandbox runs as 'nobody' (uid 65534)"
        if os.geteuid() == 0
        else f"uid {os.geteuid()}: the sandbox runs as this user inside its own namespaces"
    )
    facts = [
        Fact(
            "system",
            f"{platform.system()} {platform.release()} {platform.machine()}, "
            f"Python {platform.python_version()}",
        ),
        Fact("grader user", user),
    ]
    if mode is Mode.BUBBLEWRAP:
        facts += [bwrap_fact(), namespace_fact()]
    try:
        launcher = Launcher(mode)
    except SandboxUnavailable as exc:
        return facts, [], str(exc)
    facts.append(runtime_fact(launcher))
    problem = None
    try:
        launcher.probe()
    except SandboxUnavailable as exc:
        problem = str(exc)
    verdicts: list[Verdict] = []
    status = None
    if problem is None:
        with planted() as canaries:
            try:
                results, everything = run_probe(launcher, canaries)
            except (ChildGone, SandboxUnavailable) as exc:
                problem = f"the probe could not run: {exc}"
            else:
                status = str(results.get("seccomp"))
                verdicts = judge(results, everything, canaries, launcher.limits)
    facts.append(seccomp_fact(launcher, status))
    if problem is None and mode is Mode.BUBBLEWRAP:
        facts.append(zygote_fact(launcher))
    return facts, verdicts, problem


def render(
    mode: Mode,
    facts: Sequence[Fact],
    verdicts: Sequence[Verdict],
    problem: str | None,
    seconds: float,
) -> str:
    lines = [
        "grade doctor: can this machine grade other people's code safely?",
        "",
        f"machine (sandbox mode asked for: {mode.value})",
    ]
    lines += [f"  {'ok  ' if f.ok else 'FIX '} {f.name:<12} {f.text}" for f in facts]
    if problem is not None:
        lines += ["", f"the {mode.value} sandbox cannot start here: {problem}"]
        if mode is Mode.BUBBLEWRAP:
            lines.append(
                "until this is fixed, `grade --sandbox process` can grade your own work "
                "(weaker: it does not hide your files); never a class's submissions."
            )
        return "\n".join(lines)
    lines += ["", "canary checks (a probe submission in the sandbox tries each):"]
    lines += [f"  {'held  ' if v.held else 'FAILED'}  {v.name:<34} {v.reason}" for v in verdicts]
    failed = [v for v in verdicts if not v.held]
    lines.append("")
    if failed:
        lines.append(
            f"{len(failed)} of {len(verdicts)} checks FAILED ({seconds:.1f} s): do not "
            f"grade other people's code with the {mode.value} sandbox on this machine."
        )
    else:
        lines.append(
            f"all {len(verdicts)} checks held ({seconds:.1f} s): this machine can grade "
            f"submissions in the {mode.value} sandbox."
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """``grade doctor``; exit code 0 only if the sandbox starts and every canary check holds."""
    parser = argparse.ArgumentParser(
        prog="grade doctor",
        description="Report which sandbox this machine supports and run canary checks: a probe "
        "submission tries to read planted secrets, reach the network, fork, allocate 2 GB and "
        "write to /. Exit code 0 only if everything held.",
    )
    parser.add_argument(
        "--sandbox",
        choices=("bubblewrap", "process"),
        default="bubblewrap",
        help="the sandbox to check (default: bubblewrap)",
    )
    args = parser.parse_args(list(argv))
    mode = Mode(args.sandbox)
    started = time.monotonic()
    facts, verdicts, problem = diagnose(mode)
    print(render(mode, facts, verdicts, problem, time.monotonic() - started))
    sys.stdout.flush()
    if problem is not None or not verdicts:
        return 1
    return 0 if all(v.held for v in verdicts) and all(f.ok for f in facts) else 1


__all__ = ["Fact", "Verdict", "diagnose", "judge", "main"]
