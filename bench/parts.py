"""The parts of a batch worker's time per submission, each timed alone in this process.

    python bench/parts.py               # every part, 200 rounds each
    python bench/parts.py --rounds 50

`bench/run.py` measures what the issue's targets name; this script times the pieces a
submission's grading is made of, so that a change to one of them can be measured before and
after on its own: a call into the sandbox (a NumPy array each way), the `.npy` encoding of a
small array each way, scoring a written answer against its rubric, rendering a notebook's cells
for the report, a property check (Hypothesis's engine against a replayed list of examples), and
starting and stopping one child of a zygote (with SymPy preloaded, and without it, as in a batch
whose submissions never name it). Memos are cleared before every round, so each
figure is the cost of an input seen for the first time. Figures are medians of the rounds, in
milliseconds; the machine's speed drifts, so compare runs made close together.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"


def _median_ms(
    rounds: int, run: Callable[[], Any], before: Callable[[], Any] = lambda: None
) -> float:
    times = []
    for _ in range(rounds):
        before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def wire_parts(rounds: int) -> dict[str, float]:
    from grader.sandbox import wire

    z = np.linspace(-3.0, 3.0, 8)
    blob = wire.array_to_npy(z)
    return {
        "npy encode, 8 floats": _median_ms(rounds * 10, lambda: wire.array_to_npy(z)),
        "npy decode, 8 floats": _median_ms(rounds * 10, lambda: wire.npy_to_array(blob)),
    }


def sandbox_parts(rounds: int) -> dict[str, float]:
    from grader.assignment import load_assignment
    from grader.grading import SandboxFactory, limits_for
    from grader.remote import PRELOAD, Runner, SubmissionProxy
    from grader.sandbox.process import ChildProcess
    from grader.submission import read_submission

    assignment = load_assignment(ROOT, "backprop", use_solutions=False)
    limits, timeouts = limits_for(assignment)
    factory = SandboxFactory("bubblewrap", allow_fallback=False, zygote=True)
    launcher = factory.launcher(limits)
    zygote = factory.zygote(limits)
    out: dict[str, float] = {}
    try:
        if zygote is not None and zygote.is_ready(30.0):
            init = {
                "module_name": "__main__",
                "preload": list(PRELOAD),
                "limits": launcher.limits.as_rlimits(with_nproc=True),
            }
            out["zygote child, start and stop"] = _median_ms(
                rounds,
                lambda: ChildProcess(launcher, init=init, timeout=20.0, zygote=zygote).close(),
            )
            # A batch whose submissions never name SymPy has a zygote without it.
            lean = SandboxFactory(
                "bubblewrap", allow_fallback=False, zygote=True, preload=("numpy",)
            )
            try:
                small = lean.zygote(limits)
                if small is not None and small.is_ready(30.0):
                    out["zygote child, start and stop (NumPy only)"] = _median_ms(
                        rounds,
                        lambda: ChildProcess(
                            launcher, init=init, timeout=20.0, zygote=small
                        ).close(),
                    )
            finally:
                lean.close()
        runner = Runner(
            launcher,
            read_submission(SEED).cells,
            module_name="__main__",
            timeouts=timeouts,
            zygote=lambda: factory.zygote(limits),
        )
        runner.start()
        try:
            sub = SubmissionProxy(runner)
            z = np.linspace(-3.0, 3.0, 8)
            out["call sigmoid(8 floats) in the sandbox"] = _median_ms(
                rounds, lambda: sub.sigmoid(z)
            )
            out["bare request and reply"] = _median_ms(
                rounds, lambda: runner.request({"op": "names"})
            )
        finally:
            runner.close()
    finally:
        factory.close()
    return out


def text_parts(rounds: int) -> dict[str, float]:
    from grader.assignment import load_assignment
    from grader.checks.text import Rubric, _scoring, score_text
    from grader.submission import read_submission

    assignment = load_assignment(ROOT, "backprop", use_solutions=False)
    question = next(q for q in assignment.questions if q.kind == "text")
    rubric = Rubric.from_spec(question.rubric, where="bench")
    answer = next(c.source for c in read_submission(SEED).cells if "answer:1" in c.tags)
    return {
        "score a written answer (seed, question 1)": _median_ms(
            rounds, lambda: score_text(answer, rubric), _scoring._SCORED.clear
        )
    }


def report_parts(rounds: int) -> dict[str, float]:
    from grader.report import cells
    from grader.submission import read_submission

    sub = read_submission(SEED)
    cells.render_cells(sub)  # the exporter and its templates, built once per process
    return {
        "render a notebook's cells (seed)": _median_ms(
            rounds, lambda: cells.render_cells(sub), cells._RENDERED.clear
        )
    }


def property_parts(rounds: int) -> dict[str, float]:
    from hypothesis import given
    from hypothesis import strategies as st

    from grader import engine, replay

    engine._setup_hypothesis()

    @given(z=st.lists(st.floats(-30, 30), min_size=1, max_size=8))
    def prop(z: list[float]) -> None:
        np.array(z)

    first = _median_ms(rounds, lambda: prop())
    replay.run_property(prop, {}, before_retry=dict)
    again = _median_ms(rounds, lambda: replay.run_property(prop, {}, before_retry=dict))
    replay.forget()
    return {
        "property check, Hypothesis drawing 12 examples": first,
        "property check, the same examples replayed": again,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    figures: dict[str, float] = {}
    for part in (wire_parts, sandbox_parts, text_parts, report_parts, property_parts):
        figures.update(part(args.rounds))
    width = max(map(len, figures))
    for name, ms in figures.items():
        print(f"{name:<{width}}  {ms:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
