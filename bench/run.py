"""Grading speed, measured against the floor, on a workload this script generates itself.

    python bench/run.py                 # 200 backprop submissions, 2 workers
    python bench/run.py --count 50 --jobs 2 --repeat 3

Measures, in one run:
- `grade` on one backprop notebook (HTML report included): wall time split into start-up
  (interpreter and imports), sandbox (start and cells), checks (parent side), maths (symbolic
  and derivation checks), report; the median of --repeat runs; once cold (GRADER_NO_SERVER=1:
  every run imports everything) and once warm (through a warm grading server started for the
  benchmark in a folder of its own, stopped at the end); the same two for a `.py` module;
- `grade batch` over the workload: submissions per second and peak memory (VmHWM) per worker;
  run --batch-repeat times, alternating with the floor, and reported as medians with ranges;
  each time twice: a first grade into a new output folder, then a re-grade (--force) into the
  same one, which starts early the submissions that were slow in the first;
- scaling: the same batch over a quarter and a half of the workload, as seconds per
  submission (flat when the cost grows linearly);
- the cost of a timeout: a batch of clean submissions with and without one infinite loop added
  (the median of three such pairs), against the bound "its own time limit divided by the
  number of workers";
- the share of CPU time the host took (steal, from /proc/stat) during the batch and floor runs:
  on a shared virtual machine it explains a slow run;
- the floor, `python -c "import numpy; exec(code)"` on the same submissions with the same
  number of workers, so every figure is also a ratio to it. The floor calls no function of a
  submission, so the one whose `backward` never returns costs it nothing; the grader waits out
  that call's time limit.
The workload: per 50 submissions, correct notebooks (the seed student's and a clean one),
known-wrong variants (the mutants), one that raises at top level and one whose `backward`
never returns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
GRADE = [sys.executable, "-m", "grader.cli"]


def _correct_sources() -> list[Path]:
    found = sorted((ROOT / "student_submissions" / "backprop").glob("*.ipynb"))
    good = [p for p in found if "mistake" not in p.name and "blank" not in p.name]
    return good or [ROOT / "tests" / "corpus" / "backprop" / "correct.ipynb"]


def make_workload(folder: Path, count: int) -> list[Path]:
    """Write ``count`` submissions into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    correct = _correct_sources()
    mutants = sorted((ROOT / "solutions" / "backprop" / "mutants").glob("*.py"))
    base = nbformat.read(correct[0], as_version=4)
    paths: list[Path] = []
    for i in range(count):
        slot = i % 50
        if slot == 48:
            nb = nbformat.from_dict(json.loads(json.dumps(base)))
            nb.cells.insert(1, new_code_cell("raise RuntimeError('top-level failure')"))
            path = folder / f"s{i:04d}_exception.ipynb"
            nbformat.write(nb, path)
        elif slot == 49:
            nb = nbformat.from_dict(json.loads(json.dumps(base)))
            nb.cells.append(
                new_code_cell(
                    "def backward(x, y, w1, b1, w2, b2):\n    while True:\n        pass\n"
                )
            )
            path = folder / f"s{i:04d}_infinite_loop.ipynb"
            nbformat.write(nb, path)
        elif mutants and slot % 3 == 2:
            source = mutants[(i // 3) % len(mutants)]
            path = folder / f"s{i:04d}_{source.stem}.py"
            shutil.copyfile(source, path)
        else:
            source = correct[i % len(correct)]
            path = folder / f"s{i:04d}_{source.stem}{source.suffix}"
            shutil.copyfile(source, path)
        _make_unique(path, i)
        paths.append(path)
    return paths


def _make_unique(path: Path, i: int) -> None:
    """Make every generated submission differ from every other, as a class's would: its code
    and its written answers (grading results stay those of the file it was copied from), so
    that no cache of the grader's sees the same input twice."""
    mark = f"{i:04d}"
    if path.suffix == ".py":
        path.write_text(path.read_text() + f"\n# submission {mark}\n")
        return
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code:
        code[0].source = f"# submission {mark}\n" + code[0].source
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and "answer:1" in tags:
            cell.source += f"\n\nSubmission {mark}."
        elif cell.cell_type == "markdown" and "answer:2" in tags:
            cell.source += "\n" + " " * (i + 1)
    nbformat.write(nb, path)


# --- the floor --------------------------------------------------------------------------------


def _code_of(path: Path) -> str:
    if path.suffix == ".py":
        return path.read_text()
    nb = nbformat.read(path, as_version=4)
    # Magics and the template's self-check cells (which would start a grader) are left out.
    return "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code"
        and not c.source.lstrip().startswith(("%", "!"))
        and "grader.notebook" not in c.source
    )


def _cpu_ticks() -> tuple[int, int] | None:
    """All CPU time and the part of it stolen by the host (Linux's /proc/stat, in ticks)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(ticks), (ticks[7] if len(ticks) > 7 else 0)


@contextlib.contextmanager
def stolen(shares: list[float]) -> Iterator[None]:
    """Append the share of CPU time the host took from this machine (steal) while the block
    ran: on a shared virtual machine, a run with much steal is slow for reasons of its own."""
    before = _cpu_ticks()
    try:
        yield
    finally:
        after = _cpu_ticks()
        if before is not None and after is not None and after[0] > before[0]:
            shares.append((after[1] - before[1]) / (after[0] - before[0]))


def floor(paths: list[Path], jobs: int) -> float:
    """Seconds for `python -c "import numpy; exec(code)"` over all submissions."""
    codes = [_code_of(p) for p in paths]

    def one(code: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import numpy\nimport sys\n"
                "try:\n    exec(sys.stdin.read(), {'__name__': 'floor'})\n"
                "except BaseException:\n    pass\n",
            ],
            input=code,
            text=True,
            capture_output=True,
            check=False,
            timeout=60,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, codes))
    return time.perf_counter() - started


# --- one grade --------------------------------------------------------------------------------


COLD = {**os.environ, "GRADER_NO_SERVER": "1"}


@contextlib.contextmanager
def warm_server(folder: Path) -> Iterator[dict[str, str]]:
    """A grading server of the benchmark's own; yields the environment that reaches it."""
    folder.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "GRADER_NO_SERVER"}
    env["GRADER_SERVER_DIR"] = str(folder)
    command = [sys.executable, "-m", "grader.server"]
    started = subprocess.run(
        [*command, "start"], env=env, capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        raise SystemExit(f"the grading server did not start: {started.stdout}{started.stderr}")
    try:
        yield env
    finally:
        subprocess.run([*command, "stop"], env=env, capture_output=True, check=False)


def single(path: Path, out: Path, repeat: int, env: dict[str, str]) -> dict[str, float]:
    rows = []
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(
            [*GRADE, str(path), "--format", "json", "--output-dir", str(out)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        wall = time.perf_counter() - started
        data = json.loads(proc.stdout)
        timings = data["timings"]
        maths = sum(
            c["duration_s"]
            for q in data["questions"]
            if q["kind"] in ("symbolic", "derivation")
            for c in q["checks"]
        )
        sandbox = timings.get("sandbox_start_and_cells", 0.0) + timings.get("checks_in_sandbox", 0)
        checks = timings.get("checks", 0.0) - timings.get("checks_in_sandbox", 0.0) - maths
        report = timings.get("report", 0.0)
        rows.append(
            {
                "wall": wall,
                "startup": wall - data["duration_s"] - report,
                "sandbox": sandbox,
                "checks": checks,
                "maths": maths,
                "report": report,
            }
        )
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


# --- batch ------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def batch(folder: Path, out: Path, jobs: int) -> dict[str, float]:
    """Wall time; peak memory of the worker processes and of their zygotes (sandboxed
    processes that fork the submissions' children), each process's VmHWM."""
    peaks: dict[int, int] = {}
    zygote_peaks: dict[int, int] = {}
    proc = subprocess.Popen(
        [*GRADE, "batch", str(folder), "--jobs", str(jobs), "--output-dir", str(out), "--force"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in _descendants(proc.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    ppid = int(status.split("PPid:", 1)[1].split()[0])
                    parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
                except (OSError, IndexError, ValueError):
                    continue
                if b"bwrap" in cmd or b"import child" in cmd:
                    continue  # bubblewrap, and directly started children
                into = peaks
                if b"import zygote" in cmd:
                    if b"bwrap" not in parent:
                        continue  # a submission's child, forked by the zygote
                    into = zygote_peaks
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        into[pid] = max(into.get(pid, 0), int(line.split()[1]))
            # VmHWM is a high-water mark: twice a second misses nothing of a worker that lives
            # as long as the batch, and walking /proc ten times a second took the batch ~1 s.
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"grade batch failed ({proc.returncode}): {err[-2000:]}")
    return {
        "wall": wall,
        "peak_worker_mb": max(peaks.values(), default=0) / 1024,
        "peak_zygote_mb": max(zygote_peaks.values(), default=0) / 1024,
    }


def scaling(paths: list[Path], work: Path, jobs: int) -> dict[int, float]:
    """Seconds per submission for batches over a quarter, a half and all of the workload."""
    out: dict[int, float] = {}
    for n in sorted({max(1, len(paths) // 4), max(1, len(paths) // 2)}):
        folder = work / f"scale{n}"
        folder.mkdir()
        for path in paths[:n]:
            shutil.copyfile(path, folder / path.name)
        out[n] = batch(folder, work / f"scale{n}-out", jobs)["wall"] / n
    return out


def timeout_cost(paths: list[Path], work: Path, jobs: int) -> dict[str, float]:
    """Extra batch wall time caused by one submission whose function never returns."""
    # Enough clean ones that the other workers have more than one time limit's work (100 take
    # one worker about 10 s): with fewer, the batch ends with the loop, and the difference
    # measures how short the batch is, not what the loop adds to it.
    clean = [p for p in paths if "infinite" not in p.name and "exception" not in p.name][:100]
    looping = next((p for p in paths if "infinite" in p.name), None)
    if looping is None:
        return {}
    folders = []
    for name, extra in (("clean", []), ("with-loop", [looping])):
        folder = work / f"timeout-{name}"
        folder.mkdir()
        for path in clean:
            shutil.copyfile(path, folder / path.name)
        for path in extra:  # graded first: at the very end it would hold up the last worker
            shutil.copyfile(path, folder / f"a_{path.name}")
        folders.append(folder)
    # A difference of two short runs: the median of three pairs, run alternately, so that a
    # passing slow spell of the machine does not land on one side only.
    added = []
    for attempt in range(3):
        clean_s, loop_s = (
            batch(folder, work / f"{folder.name}-out{attempt}", jobs)["wall"] for folder in folders
        )
        added.append(loop_s - clean_s - clean_s / len(clean))
    spec = (ROOT / "assignments" / "backprop" / "spec.toml").read_text()
    limit = float(spec.split("call_timeout = ", 1)[1].split()[0])
    return {
        "added_s": statistics.median(added),
        "bound_s": limit / jobs,
        "limit_s": limit,
        "clean": len(clean),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the single grade")
    parser.add_argument(
        "--batch-repeat",
        type=int,
        default=3,
        help="runs of the batch and of its floor, alternately (the medians are reported)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        work = Path(tmp)
        paths = make_workload(work / "subs", args.count)
        notebook = _correct_sources()[0]
        module = ROOT / "student_submissions" / "backprop" / "correct_sympy.py"
        one = single(notebook, work / "single", args.repeat, COLD)
        module_cold = single(module, work / "single", args.repeat, COLD)
        with warm_server(work / "server") as env:
            single(notebook, work / "single", 1, env)  # the server's first worker: not counted
            one_warm = single(notebook, work / "single", args.repeat, env)
            module_warm = single(module, work / "single", args.repeat, env)
        floor_one = floor(paths[:1] * args.repeat, 1) / args.repeat
        # The machine's speed drifts by a fifth or more within minutes: the batch and its floor
        # are run alternately, so that a slow spell is not all on one side, and the medians
        # (with the range) are reported. Each batch runs twice: first into a new output folder
        # (a first grade, in the folder's order), then again with --force into the same one (a
        # re-grade, which starts the submissions that were slow in the first run early).
        floors, runs, reruns = [], [], []
        steal: list[float] = []
        for attempt in range(max(1, args.batch_repeat)):
            out = work / f"out{attempt}"
            with stolen(steal):
                floors.append(floor(paths, args.jobs))
            with stolen(steal):
                runs.append(batch(work / "subs", out, args.jobs))
            with stolen(steal):
                reruns.append(batch(work / "subs", out, args.jobs))
        walls = [r["wall"] for r in runs]
        rewalls = [r["wall"] for r in reruns]
        b = {
            "wall": statistics.median(walls),
            "rewall": statistics.median(rewalls),
            "peak_worker_mb": max(r["peak_worker_mb"] for r in runs + reruns),
            "peak_zygote_mb": max(r["peak_zygote_mb"] for r in runs + reruns),
        }
        floor_s = statistics.median(floors)
        ratios = [wall / f for wall, f in zip(walls, floors, strict=True)]
        reratios = [wall / f for wall, f in zip(rewalls, floors, strict=True)]
        scale = scaling(paths, work, args.jobs)
        scale[args.count] = b["wall"] / args.count
        cost = timeout_cost(paths, work, args.jobs)
    rate = args.count / b["wall"]
    floor_rate = args.count / floor_s
    rates = sorted(args.count / w for w in walls)
    rerate = args.count / b["rewall"]
    rerates = sorted(args.count / w for w in rewalls)
    floor_rates = sorted(args.count / f for f in floors)
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "count": args.count,
        "jobs": args.jobs,
        "single": one,
        "single_warm": one_warm,
        "module_cold_s": module_cold["wall"],
        "module_warm_s": module_warm["wall"],
        "floor_single_s": floor_one,
        "batch_wall_s": b["wall"],
        "batch_per_s": rate,
        "floor_per_s": floor_rate,
        "batch_vs_floor": statistics.median(ratios),
        "batch_runs_per_s": rates,
        "floor_runs_per_s": floor_rates,
        "batch_vs_floor_runs": sorted(ratios),
        "regrade_wall_s": b["rewall"],
        "regrade_per_s": rerate,
        "regrade_runs_per_s": rerates,
        "regrade_vs_floor": statistics.median(reratios),
        "peak_worker_mb": b["peak_worker_mb"],
        "steal_share_max": max(steal, default=0.0),
    }
    for label, fig in (("cold", one), ("warm server", one_warm)):
        print(
            f"grade, one backprop notebook, {label} (median of {args.repeat}): "
            f"{fig['wall']:.3f} s wall = {fig['wall'] / floor_one:.1f}× the floor "
            f"({floor_one:.3f} s)"
        )
        for key in ("startup", "sandbox", "checks", "maths", "report"):
            print(f"    {key:<8} {fig[key]:.3f} s")
    print(
        f"grade, one .py module ({module.name}): cold {module_cold['wall']:.3f} s, "
        f"warm server {module_warm['wall']:.3f} s wall"
    )
    print(
        f"grade batch, {args.count} submissions, {args.jobs} workers (median of {len(runs)}, "
        f"alternating with the floor): {b['wall']:.1f} s, {rate:.1f} submissions/s "
        f"(runs {rates[0]:.1f}–{rates[-1]:.1f}); floor {floor_rate:.1f}/s "
        f"(runs {floor_rates[0]:.1f}–{floor_rates[-1]:.1f}); "
        f"{statistics.median(ratios):.2f}× the floor's time (runs {min(ratios):.2f}–"
        f"{max(ratios):.2f})"
    )
    print(
        f"the same batch graded again (--force, the slow ones of the first grade started early): "
        f"{b['rewall']:.1f} s, {rerate:.1f} submissions/s (runs {rerates[0]:.1f}–"
        f"{rerates[-1]:.1f}); {statistics.median(reratios):.2f}× the floor's time (runs "
        f"{min(reratios):.2f}–{max(reratios):.2f})"
    )
    if steal:
        print(
            f"CPU time taken by the host (steal) during those runs: up to {max(steal):.0%} "
            "(a run with much steal is slow for reasons of its own)"
        )
    together = b["peak_worker_mb"] + b["peak_zygote_mb"]
    print(
        f"peak memory per worker: {b['peak_worker_mb']:.0f} MB, and its zygote "
        f"{b['peak_zygote_mb']:.0f} MB (together {together:.0f} MB)"
    )
    print(
        "scaling: "
        + ", ".join(f"{n} submissions {sec:.3f} s each" for n, sec in sorted(scale.items()))
    )
    if cost:
        print(
            f"one infinite loop added {cost['added_s']:.1f} s to a batch of {cost['clean']} "
            f"(bound: its {cost['limit_s']:g} s limit / {args.jobs} workers = "
            f"{cost['bound_s']:.1f} s)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
