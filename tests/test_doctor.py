"""``grade doctor``: the machine report, the canary verdicts, and full runs as root and not.

The full runs (marked slow) start the real sandbox. The unprivileged run, when the tests run as
root, happens in a private mount namespace as uid 65534; runtime folders that user could not
reach (a Python under a 0700 home) are shown to it there through a tmpfs with bind mounts, so
the host's permissions are never changed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader import doctor
from grader.sandbox.launcher import NOBODY, Limits, Mode, Runtime, unreachable_component

REPO = Path(__file__).resolve().parent.parent


class FakeListener:
    def __init__(self, accepted: int = 0) -> None:
        self.accepted = accepted
        self.port = 1


def canaries(tmp_path: Path, accepted: int = 0) -> doctor.Canaries:
    return doctor.Canaries(
        token="GRADERDOCTORabc",
        marker="grdocnone",
        tmp_file=tmp_path / "s",
        home_file=tmp_path / "h",
        listener=FakeListener(accepted),
    )  # type: ignore[arg-type]


HELD: dict[str, Any] = {
    "environ": "{'PATH': '/usr/bin'}",
    "self_environ": "read:PATH=/usr/bin",
    "proc1_environ": "read:PATH=/usr/bin:/bin\0",
    "tmp_file": "refused:ENOENT",
    "home_file": "refused:ENOENT",
    "shadow": "refused:ENOENT",
    "tcp": "refused:EAFNOSUPPORT",
    "forked": 0,
    "memory": "refused:MemoryError",
    "write_root": "refused:EROFS",
}


def test_judge_all_held(tmp_path: Path) -> None:
    verdicts = doctor.judge(HELD, repr(HELD), canaries(tmp_path), Limits())
    assert len(verdicts) == 10
    assert all(v.held for v in verdicts), [v for v in verdicts if not v.held]


@pytest.mark.parametrize(
    "change, failed",
    [
        ({"environ": "{'GRADER_DOCTOR_SECRET': 'GRADERDOCTORabc'}"}, "secret environment variable"),
        ({"proc1_environ": "read:SECRET=GRADERDOCTORabc"}, "/proc/1/environ"),
        ({"tmp_file": "read:GRADERDOCTORabc"}, "secret file in a temp folder"),
        ({"home_file": "read:GRADERDOCTORabc"}, "secret file in the grader's home"),
        ({"shadow": "read:root:*:19000"}, "/etc/shadow"),
        ({"tcp": "connected"}, "TCP to 127.0.0.1"),
        ({"forked": 200}, "fork many processes"),
        ({"forked": "lots"}, "fork many processes"),
        ({"memory": "allocated 2 GB"}, "allocate 2 GB"),
        ({"write_root": "written"}, "write to /"),
    ],
)
def test_judge_names_what_failed(tmp_path: Path, change: dict[str, Any], failed: str) -> None:
    results = dict(HELD, **change)
    verdicts = doctor.judge(results, repr(results), canaries(tmp_path), Limits())
    assert [v.name for v in verdicts if not v.held and v.name != "nothing else leaked"] == [failed]


def test_judge_trusts_the_listener_not_the_probe(tmp_path: Path) -> None:
    verdicts = doctor.judge(HELD, repr(HELD), canaries(tmp_path, accepted=1), Limits())
    tcp = next(v for v in verdicts if v.name == "TCP to 127.0.0.1")
    assert not tcp.held and "accepted 1" in tcp.reason


def test_listener_counts_connections_from_the_host() -> None:
    listener = doctor.Listener()
    try:
        assert listener.accepted == 0
        with socket.create_connection(("127.0.0.1", listener.port), timeout=2):
            pass
        time.sleep(0.05)
        assert listener.accepted == 1
    finally:
        listener.close()


def test_missing_bubblewrap_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    fact = doctor.bwrap_fact()
    assert not fact.ok and "apt-get install bubblewrap" in fact.text


def test_apparmor_restriction_says_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "/proc/sys/user/max_user_namespaces": "1000",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1",
    }
    monkeypatch.setattr(doctor, "_read", values.get)
    monkeypatch.setattr(doctor, "Path", lambda p: Path("/nonexistent") / Path(p).name)
    fact = doctor.namespace_fact()
    assert not fact.ok and "bwrap-userns-restrict" in fact.text and "apt install" in fact.text
    values["/proc/sys/user/max_user_namespaces"] = "0"
    assert "max_user_namespaces" in doctor.namespace_fact().text


def test_render_when_the_sandbox_cannot_start() -> None:
    text = doctor.render(
        Mode.BUBBLEWRAP,
        [doctor.Fact("bubblewrap", "not installed", ok=False)],
        [],
        "bubblewrap is not installed: `apt-get install bubblewrap`",
        0.1,
    )
    assert "FIX  bubblewrap" in text
    assert "cannot start here: bubblewrap is not installed" in text
    assert "--sandbox process" in text


def test_process_mode_is_never_reported_safe(capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--sandbox", "process"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out or "cannot start here" in out


# --- full runs ----------------------------------------------------------------------------------


def doctor_command() -> list[str]:
    return [sys.executable, "-m", "grader.cli", "doctor"]


@pytest.mark.slow
def test_doctor_passes_here() -> None:
    proc = subprocess.run(
        doctor_command(), capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 10 checks held" in proc.stdout
    assert "Seccomp: 2" in proc.stdout
    assert "ok   zygote       batch workers fork each child" in proc.stdout
    assert not list(Path.home().glob(".grader-doctor-*"))  # canaries cleaned up


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="grader-doctor-home-"))
    try:
        if os.geteuid() == 0:
            os.chown(home, NOBODY, NOBODY)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def unprivileged_command(home: Path, stash_dir: Path) -> list[str]:
    """Run ``grade doctor`` as uid 65534 in a mount namespace where it can reach the runtime."""
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/local/bin:/usr/bin:/bin"]
    command = [*env, *doctor_command()]
    needed = [*Runtime.current().roots, str(REPO)]
    blocked: dict[str, list[str]] = {}
    for path in needed:
        blocker = unreachable_component(path)
        if blocker is not None:
            blocked.setdefault(blocker, []).append(path)
    lines = ["set -e"]
    stash = 0
    for blocker, paths in blocked.items():
        binds = []
        for path in paths:
            lines.append(
                f"mkdir -p {stash_dir}/{stash} && mount --bind '{path}' {stash_dir}/{stash}"
            )
            binds.append(f"mkdir -p '{path}' && mount --bind {stash_dir}/{stash} '{path}'")
            stash += 1
        lines.append(f"mount -t tmpfs -o mode=755,size=1m tmpfs '{blocker}'")
        lines += binds
    setpriv = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=-all",
    ]
    lines.append("cd / && exec " + " ".join(f"'{a}'" for a in [*setpriv, *command]))
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)]


@pytest.mark.slow
def test_doctor_passes_as_an_unprivileged_user(nobody_home: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        command = unprivileged_command(nobody_home, tmp_path)
    else:  # already unprivileged: the ordinary command is the test
        command = doctor_command()
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd="/"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"uid {NOBODY if os.geteuid() == 0 else os.getuid()}" in proc.stdout
    assert "all 10 checks held" in proc.stdout
    assert list(nobody_home.iterdir()) == []  # the home canary was removed


def test_doctor_says_so_when_the_zygote_is_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_ZYGOTE", "0")
    fact = doctor.zygote_fact(None)  # type: ignore[arg-type]  # not started: turned off
    assert fact.text.startswith("turned off by GRADER_ZYGOTE=0")
    assert "start every child directly" in fact.text
