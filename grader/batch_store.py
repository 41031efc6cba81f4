"""The output folder of a batch: which submissions there are, their records, and the lock.

Runs in the trusted parent. Each submission has a record in ``.grade-batch/<key>.json`` (the
file's hash, the grader version, a fingerprint of the assignment, the result before
overrides), written after its output files, so a record means "these files are complete".
Re-running reuses a record whose file, assignment and options are unchanged. How long each
submission took to grade is kept in ``.grade-batch/.seconds.json``, so that a re-grade can start
the slow ones early (see ``batch.start_order``). Every file is written atomically. This module
never follows a symbolic link out of the batch folder.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch_worker import Done, dumps
from .cli import atomic_write
from .errors import GraderError, OutputLocked, UsageError
from .overrides import Override, apply_fitting, overrides_for
from .report.gradebook import Entry, gradescope_json, result_json
from .results import GradeResult
from .submission import open_regular

__all__ = [
    "CACHEABLE",
    "STATE_DIR",
    "Found",
    "Store",
    "discover",
    "file_hash",
    "load_seconds",
    "open_regular",
    "output_lock",
    "save_seconds",
]

STATE_DIR = ".grade-batch"  # lock and per-submission records, inside the output folder
# In STATE_DIR: each submission's grading time in the latest run that graded it. Hidden, so no
# submission's key (never hidden: ``discover`` skips hidden files) names it as its record.
SECONDS = ".seconds.json"
RESERVED = frozenset({"grades", "canvas", "summary"})
SUFFIXES = (".ipynb", ".py")
SKIP_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".git"})
# Records with these statuses are final for an unchanged file; others are retried next run.
CACHEABLE = frozenset({"graded", "timeout", "unreadable"})


# --- finding submissions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    path: Path
    source: str  # relative to the batch folder, with "/"
    student: str
    key: str
    problem: str = ""  # set when the file must not be read (e.g. a symbolic link)


def discover(folder: Path, output_dir: Path, *, ignored: list[str] | None = None) -> list[Found]:
    """Every ``.ipynb``/``.py`` under ``folder``, sorted; the student id is the top folder's
    name for files in a per-student folder, else the file's stem.

    A symbolic link (to a file or to a student's folder) or anything that is not a regular
    file (a FIFO would block the reader forever) is found with a ``problem`` and never read.
    Other files (not hidden) are appended to ``ignored``, as paths relative to ``folder``.
    Keys (the output files' names) are unique, also when compared without case.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder (use `grade FILE` for one submission)")
    out_resolved = output_dir.resolve()
    found: list[tuple[Path, str, str, str]] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        here = Path(root)
        linked = [d for d in dirs if (here / d).is_symlink() and not d.startswith(".")]
        for d in linked:
            rel = (here / d).relative_to(folder).as_posix()
            student = rel.split("/")[0]
            found.append((here / d, rel + "/", student, _LINK))
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIP_DIRS
            and d not in linked
            and (here / d).resolve() != out_resolved
        )
        for name in sorted(files):
            path = here / name
            if name.startswith("."):
                continue
            rel = path.relative_to(folder).as_posix()
            if path.suffix.lower() not in SUFFIXES:
                if ignored is not None:
                    ignored.append(rel)
                continue
            parts = rel.split("/")
            problem = ""
            if path.is_symlink():
                problem = _LINK
            elif not path.is_file():
                problem = "it is not a regular file"
            found.append((path, rel, parts[0] if len(parts) > 1 else path.stem, problem))
    if ignored is not None:
        ignored.sort()
    counts: dict[str, int] = {}
    for _, _, student, _ in found:
        counts[student] = counts.get(student, 0) + 1
    result = []
    taken: set[str] = set()
    for path, rel, student, problem in sorted(found, key=lambda f: f[1]):
        base = student if counts[student] == 1 else rel.rstrip("/").replace("/", "__")
        if base.lower() in RESERVED:
            base += "-submission"
        key, n = base, 2
        while key.lower() in taken:
            key, n = f"{base}-{n}", n + 1
        taken.add(key.lower())
        result.append(Found(path, rel, student, key, problem))
    return result


_LINK = "it is a symbolic link; a batch does not follow links"


# --- records, resume and the lock -------------------------------------------------------------


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.cache
def grader_version() -> str:
    """The version and a hash of the grader's own files: a record made by other grading code
    is not reused (the version number alone stays the same across many changes)."""
    from . import __version__

    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(package).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:16]}"


def assignment_fingerprint(course: Path, aid: str, use_solutions: bool) -> str:
    """A hash of everything that decides a grade: spec, checks, reference and answers."""
    from .assignment import load_assignment

    a = load_assignment(course, aid, use_solutions=use_solutions)
    files = [a.spec_path, *a.check_files()]
    files += [p for p in (a.reference_path(), a.answers_path()) if p is not None]
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(str(p.relative_to(course)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def load_seconds(output_dir: Path) -> dict[str, float]:
    """Each submission's grading time in the latest run that graded it (key → seconds); empty
    when there is none or the file is not what this module writes (it is only a hint)."""
    try:
        with open_regular(output_dir / STATE_DIR / SECONDS) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # also a link, a FIFO, or nested too deep
        return {}
    if not isinstance(data, dict):
        return {}
    seconds = {}
    for key, value in data.items():
        try:
            number = float(value) if isinstance(value, int | float) else math.nan
        except OverflowError:  # an integer too large for a float
            continue
        if math.isfinite(number) and number >= 0:
            seconds[key] = number
    return seconds


def save_seconds(output_dir: Path, seconds: dict[str, float]) -> None:
    """Keep the grading times for the next run; a file that cannot be written is only a hint
    lost (the next re-grade keeps the folder's order), never a failed batch."""
    try:
        atomic_write(
            output_dir / STATE_DIR / SECONDS,
            json.dumps({k: round(v, 3) for k, v in sorted(seconds.items())}) + "\n",
        )
    except OSError:
        pass


@contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output_dir`` or refuse at once, naming the holder."""
    state = output_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise OutputLocked(
                f"another `grade batch` (pid {holder}) is writing to {output_dir}; wait for it "
                "to finish or pass another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        # Temporary files of atomic writes that a killed run left behind are ours to remove.
        for leftover in [*output_dir.glob(".*.tmp"), *state.glob(".*.tmp")]:
            leftover.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass
class Store:
    """One run's view of the output folder: what is recorded there and what to write."""

    output_dir: Path
    course: Path
    overrides: tuple[Override, ...]
    assignment: str | None  # as requested; None: each submission names its own
    use_solutions: bool
    sandbox: str
    force: bool = False
    fingerprints: dict[str, str] = field(default_factory=dict)
    # The places ("file:line") of the overrides applied in this run, and of those that named a
    # student whose submission they do not fit, with why (see ``final``).
    applied: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)

    def final(self, found: Found, raw: GradeResult) -> GradeResult:
        """``raw`` with this student's overrides applied; those that do not fit are noted."""
        chosen = overrides_for(self.overrides, found.student, raw.assignment)
        final, refused = apply_fitting(raw, chosen)
        for o, why in refused:
            self.refused[o.where] = f"not applied to {found.source} ({raw.assignment}): {why}"
        left_out = {o.where for o, _ in refused}
        self.applied.update(o.where for o in chosen if o.where not in left_out)
        return final

    def fingerprint(self, aid: str) -> str:
        if aid not in self.fingerprints:
            self.fingerprints[aid] = assignment_fingerprint(self.course, aid, self.use_solutions)
        return self.fingerprints[aid]

    def record_path(self, key: str) -> Path:
        return self.output_dir / STATE_DIR / f"{key}.json"

    def reusable(self, found: Found, digest: str) -> dict[str, Any] | None:
        """The stored record of an unchanged submission, if it can stand."""
        if self.force:
            return None
        try:
            record = json.loads(self.record_path(found.key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("status") not in CACHEABLE:
            return None
        same = (
            record.get("sha256") == digest
            and record.get("grader") == grader_version()
            and record.get("source") == found.source
            and record.get("requested_assignment") == self.assignment
            and record.get("use_solutions") == self.use_solutions
            and record.get("sandbox") == self.sandbox
        )
        if not same:
            return None
        raw = record.get("result")
        if isinstance(raw, dict):
            aid = str(raw.get("assignment"))
            try:
                if record.get("fingerprint") != self.fingerprint(aid):
                    return None
            except GraderError:
                return None
        return record

    def write(self, found: Found, digest: str, done: Done) -> Entry:
        """Write one submission's files, its record last (the record says they are complete)."""
        from .report.html import render_failure

        out = self.output_dir
        raw = GradeResult.from_json(done.raw) if done.raw is not None else None
        if raw is None:
            entry = Entry(found.key, found.student, found.source, done.status, done.message)
            atomic_write(out / f"{found.key}.html", render_failure(entry))
            atomic_write(out / f"{found.key}.results.json", dumps(gradescope_json(entry)))
            atomic_write(
                out / f"{found.key}.json",
                dumps(
                    {
                        "submission": found.source,
                        "student": found.student,
                        "status": done.status,
                        "message": done.message,
                    }
                ),
            )
        else:
            final = self.final(found, raw)
            entry = Entry(found.key, found.student, found.source, done.status, done.message, final)
            atomic_write(out / f"{found.key}.html", done.html)
            atomic_write(out / f"{found.key}.results.json", done.gradescope)
            atomic_write(out / f"{found.key}.json", done.final_json)
        if done.status in CACHEABLE:
            record = {
                "grader": grader_version(),
                "sha256": digest,
                "source": found.source,
                "student": found.student,
                "status": done.status,
                "message": done.message,
                "requested_assignment": self.assignment,
                "use_solutions": self.use_solutions,
                "sandbox": self.sandbox,
                "fingerprint": self.fingerprint(raw.assignment) if raw is not None else "",
                "result": done.raw,
            }
            # The record is the grader's own bookkeeping: compact JSON (json's C encoder),
            # not the indented form of the files people read.
            atomic_write(self.record_path(found.key), json.dumps(record, ensure_ascii=False))
        return entry

    def reuse(self, found: Found, record: dict[str, Any]) -> tuple[Entry, bool]:
        """The entry of an unchanged submission, and whether its files are still current."""
        out = self.output_dir
        raw_json = record.get("result")
        status, message = str(record["status"]), str(record.get("message", ""))
        if not isinstance(raw_json, dict):
            entry = Entry(found.key, found.student, found.source, status, message)
            current = all(
                (out / f"{found.key}{s}").is_file() for s in (".html", ".json", ".results.json")
            )
            return entry, current
        raw = GradeResult.from_json(raw_json)
        final = self.final(found, raw)
        entry = Entry(found.key, found.student, found.source, status, message, final)
        try:
            written = (out / f"{found.key}.json").read_text(encoding="utf-8")
        except OSError:
            return entry, False
        current = (
            written == dumps(result_json(final))
            and (out / f"{found.key}.html").is_file()
            and (out / f"{found.key}.results.json").is_file()
        )
        return entry, current
