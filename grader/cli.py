"""The ``grade`` command: arguments in, library calls, output paths and exit codes out.

Exit codes: 0 full marks, 1 graded below full marks, 2 usage or input error (one line, no
traceback), 3 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GraderError

if TYPE_CHECKING:
    from .results import GradeResult

SUBCOMMANDS = ("batch", "check-solutions", "doctor")

DESCRIPTION = """\
Grade a machine-learning homework notebook (.ipynb) or module (.py) in a sandbox.

  grade mysubmission.ipynb                 grade, print a summary, write reports/
  grade mysubmission.ipynb --format json   the result as JSON on stdout
  grade mymodule.py --assignment backprop -q 5   check one question only
  grade batch FOLDER                       grade a whole class (see `grade batch --help`)
  grade check-solutions [ID ...]           references pass, known-wrong variants lose points
  grade doctor                             which sandbox this machine supports, canary checks

Exit codes: 0 full marks, 1 below full marks, 2 usage or input error, 3 internal error.
"""


def _grade_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("submission", help="the .ipynb notebook or .py module to grade")
    p.add_argument(
        "--assignment",
        "-a",
        help="assignment id (default: from the notebook's "
        "metadata, __assignment__, or the functions it defines)",
    )
    p.add_argument(
        "-q",
        "--question",
        action="append",
        dest="questions",
        metavar="Q",
        help="grade only this question (repeatable); the report is then <stem>.q<ids>.html/.json",
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text summary (default) or the JSON result on stdout",
    )
    p.add_argument(
        "--output-dir",
        "-o",
        default="reports",
        help="where reports go: OUT/<assignment>/<stem>.json and .html (default: reports)",
    )
    p.add_argument("--no-report", action="store_true", help="write no files")
    p.add_argument(
        "--sandbox",
        choices=("auto", "bubblewrap", "process"),
        default="auto",
        help="auto (default) uses bubblewrap and falls back, with a warning, to the "
        "weaker process mode when bubblewrap cannot start",
    )
    p.add_argument(
        "--course",
        help="folder with assignments/ and solutions/ (default: found "
        "from the current folder, or $GRADER_COURSE_DIR)",
    )
    p.add_argument(
        "--no-solutions",
        action="store_true",
        help="grade as a student's copy would: public checks only",
    )
    p.add_argument(
        "--no-server",
        action="store_true",
        help="grade in this process: neither use nor start the warm background server "
        "(also GRADER_NO_SERVER=1)",
    )
    return p


def atomic_write(path: Path, data: str) -> None:
    """Write a file so that a reader never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide reports from other users
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _cmd_grade(argv: Sequence[str]) -> int:
    args = _grade_parser().parse_args(argv)
    from .grading import GradeOptions, assignment_mismatch, grade_path

    options = GradeOptions(
        course=Path(args.course) if args.course else None,
        assignment=args.assignment,
        questions=tuple(args.questions) if args.questions else None,
        sandbox=args.sandbox,
        use_solutions=not args.no_solutions,
        report=not args.no_report,
    )
    result, sub, assignment = grade_path(args.submission, options)
    warnings = [w for w in [assignment_mismatch(sub, assignment)] if w]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # A run of some questions only is labelled as such everywhere, and its files are named
    # after those questions so that they never replace the full report.
    only = [q.id for q in result.questions] if options.questions else None
    report_path = None
    write_error = ""
    if not args.no_report:
        from .report.html import render_report

        out = Path(args.output_dir) / result.assignment
        stem = f"{sub.stem}.q{'-'.join(only)}" if only else sub.stem
        started = time.perf_counter()
        html = render_report(result, sub, assignment, only=only, warnings=warnings)
        result = replace(
            result, timings={**result.timings, "report": time.perf_counter() - started}
        )
        html_path = out / f"{stem}.html"
        try:
            atomic_write(html_path, html)
            atomic_write(
                out / f"{stem}.json", json.dumps(_json(result, only, warnings), indent=2) + "\n"
            )
            report_path = str(html_path)
        except OSError as exc:
            # The grade is still shown; only the files are missing, which is a usage error.
            write_error = f"cannot write the report to {out}: {exc.strerror or exc}"
    if args.format == "json":
        print(json.dumps(_json(result, only, warnings), indent=2))
    else:
        from .report.terminal import summary

        print(summary(result, report_path=report_path, only=only))
    if write_error:
        print(f"grade: error: {write_error}", file=sys.stderr)
        return 2
    return 0 if result.full_marks else 1


def _json(
    result: GradeResult, only: Sequence[str] | None, warnings: Sequence[str]
) -> dict[str, Any]:
    """The result as JSON; a partial run says which questions it graded."""
    data = result.to_json()
    data["warnings"] = list(warnings)
    data["partial"] = only is not None
    if only is not None:
        data["questions_graded"] = list(only)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """The ``grade`` command. From the command line (``argv`` None), ``grade FILE`` goes
    through the warm grading server when one runs, and starts one when none does."""
    if argv is None:
        args = sys.argv[1:]
        if not (args and args[0] in SUBCOMMANDS):
            from .server import grade_via_server

            return grade_via_server(args, run)
        return run(args)
    return run(list(argv))


def run(argv: list[str]) -> int:
    """Run the command in this process (the server's workers call this too)."""
    try:
        if argv and argv[0] in SUBCOMMANDS:
            command, rest = argv[0], argv[1:]
            if command == "batch":
                from .batch import main as batch_main

                return batch_main(rest)
            if command == "check-solutions":
                from .solutions import main as solutions_main

                return solutions_main(rest)
            from .doctor import main as doctor_main

            return doctor_main(rest)
        return _cmd_grade(argv)
    except GraderError as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `grade ... | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last resort: say it is ours, keep the details short
        import traceback

        traceback.print_exc(limit=-3, file=sys.stderr)
        print(f"grade: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
