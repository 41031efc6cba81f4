"""What a check file may hand the grader: evidence of any type is shown as text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grader.errors import CheckFailed, as_text
from grader.grading import GradeOptions, grade_path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "student_submissions" / "backprop" / "seed_student.ipynb"

EXTRA = '''
import numpy as np
from grader import CheckFailed, check


@check("3", 0, name="rows sum to one")
def check_rows(sub, record):
    """an array as the expected and the returned value"""
    raise CheckFailed("they do not", expected=np.ones(3), actual=np.zeros(3))


@check("3", 0, name="recorded with arrays")
def check_recorded(sub, record):
    """award with arrays"""
    record.award(1.0, "fine", expected=np.arange(2), actual=np.arange(2))
'''


def test_evidence_of_any_type_becomes_text() -> None:
    assert as_text(None) is None and as_text("x") == "x"
    assert as_text(np.ones(2)) == "[1. 1.]"
    assert as_text(3.5) == "3.5"
    assert as_text("y" * 5000) == "y" * 5000  # text is never cut
    assert as_text(list(range(1000)))[-2:] == " …"
    failed = CheckFailed("m", expected=np.zeros(2), actual=[1, 2])
    assert (failed.expected, failed.actual) == ("[0. 0.]", "[1, 2]")


@pytest.mark.slow
def test_a_check_that_passes_arrays_as_evidence_is_graded(tmp_path: Path) -> None:
    for part in ("assignments", "solutions"):
        shutil.copytree(ROOT / part, tmp_path / part)
    (tmp_path / "assignments" / "backprop" / "checks" / "check_extra.py").write_text(
        EXTRA, encoding="utf-8"
    )
    result, _, _ = grade_path(SEED, GradeOptions(course=tmp_path, questions=("3",)))
    checks = {c.name: c for c in result.question("3").checks}
    assert checks["rows sum to one"].expected == "[1. 1. 1.]"
    assert checks["rows sum to one"].actual == "[0. 0. 0.]"
    assert checks["recorded with arrays"].expected == "[0 1]"


@pytest.mark.slow
def test_a_bad_symbol_is_named_with_its_spec_file(tmp_path: Path) -> None:
    from grader.errors import SpecError

    for part in ("assignments", "solutions"):
        shutil.copytree(ROOT / part, tmp_path / part)
    spec = tmp_path / "assignments" / "backprop" / "spec.toml"
    text = spec.read_text(encoding="utf-8")
    bad = text.replace('x = { kind = "scalar"', 'x = { kind = "vectr"', 1)
    assert bad != text
    spec.write_text(bad, encoding="utf-8")
    with pytest.raises(SpecError, match=r"spec\.toml: \[symbols\]: symbol 'x': kind='vectr'"):
        grade_path(SEED, GradeOptions(course=tmp_path, questions=("2",)))


SEEDS = '''
import zlib
from grader import CheckFailed, check


def _expected(name):
    return zlib.crc32(f"check_seeds.py::{name}".encode())


@check("3", 0, name="first")
def check_first(seed, rng, record):
    """each check's own seed"""
    want = __import__("numpy").random.default_rng(_expected("check_first")).random()
    got = [seed, rng.random()]
    raise CheckFailed("seen", expected=[_expected("check_first"), want], actual=got)


@check("3", 0, name="second")
def check_second(seed, record):
    """and the next check's"""
    raise CheckFailed("seen", expected=_expected("check_second"), actual=seed)
'''


@pytest.mark.slow
def test_each_check_gets_the_seed_of_its_own_name(tmp_path: Path) -> None:
    """``seed``, ``rng`` and ``record`` are seeded from the running check's file and name, the
    same in the kept session of a long-lived process and in a fresh pytest run."""
    from grader import engine

    for part in ("assignments", "solutions"):
        shutil.copytree(ROOT / part, tmp_path / part)
    (tmp_path / "assignments" / "backprop" / "checks" / "check_seeds.py").write_text(
        SEEDS, encoding="utf-8"
    )
    for kept in (True, False, True):
        if not kept:
            engine._drop_kept()
        result, _, _ = grade_path(SEED, GradeOptions(course=tmp_path, questions=("3",)))
        checks = {c.name: c for c in result.question("3").checks}
        for name in ("first", "second"):
            assert checks[name].expected == checks[name].actual, (name, kept)
        assert checks["first"].actual != checks["second"].actual
