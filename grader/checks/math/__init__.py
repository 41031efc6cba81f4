"""Checking mathematics: reading formulas, equivalence, derivations and targeted hints.

The public surface for check authors. A question declares its symbols in a
:class:`SymbolTable`; student text is read with :func:`read` (never ``eval``/``sympify``),
compared with :func:`equivalent` (equivalent / not equivalent with a counterexample /
undecided), derivations are judged with :func:`check_derivation`, and a wrong answer is
matched to a known mistake with :func:`diagnose`. The private modules (``_lexer``,
``_grammar``, ``_build``, …) may change without notice.
"""

from grader.checks.math.derivation import DerivationCheck, Step, check_derivation, split_steps
from grader.checks.math.equivalence import Equivalence, Verdict, equivalent
from grader.checks.math.functions import Deriv, OneByOne, sigma
from grader.checks.math.misconceptions import Variant, diagnose, generate_variants
from grader.checks.math.numeric import Undefined, Unevaluable, value_at
from grader.checks.math.parser import (
    ReadError,
    Reading,
    read,
    read_derivative_equations,
    read_value,
    scan_derivative_equations,
)
from grader.checks.math.shapes import ShapeError, shape_of
from grader.checks.math.symbols import SymbolSpec, SymbolTable

__all__ = [
    "Deriv",
    "DerivationCheck",
    "Equivalence",
    "OneByOne",
    "ReadError",
    "Reading",
    "ShapeError",
    "Step",
    "SymbolSpec",
    "SymbolTable",
    "Undefined",
    "Unevaluable",
    "Variant",
    "Verdict",
    "check_derivation",
    "diagnose",
    "equivalent",
    "generate_variants",
    "read",
    "read_derivative_equations",
    "read_value",
    "scan_derivative_equations",
    "shape_of",
    "sigma",
    "split_steps",
    "value_at",
]
