"""The symbols an assignment declares for its formulas: kind, shape, domain, aliases, shorthands.

A :class:`SymbolTable` is built once per question from trusted assignment data and validated
there (a bad value raises :class:`grader.errors.SpecError` quoting it). It maps every spelling
a student may use (``w_1``, ``w_{1}``, ``W_1``, ``\\beta``, ``β``) to one canonical SymPy
object. This module never reads student text and never evaluates anything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, cast, get_args

import sympy

from grader.errors import SpecError
from grader.memo import Memo

# A subscript in a declared spelling (h_t, h_{t-1}), and a t that is an index of its own in
# one: h_t, h_{t-1}, x_{i,t}, h_{\,t}, but not h_{tanh}, x_{test}, W_{ht} or h_{\tau}.
_SUBSCRIPT = re.compile(r"_(?:\{([^{}]*)\}|([A-Za-z0-9]))")
_T_INDEX = re.compile(r"(?<![A-Za-z\\])t(?![A-Za-z])")


def _has_t_index(spelling: str) -> bool:
    if "ₜ" in spelling:
        return True
    return any(
        _T_INDEX.search(m.group(1) if m.group(1) is not None else m.group(2))
        for m in _SUBSCRIPT.finditer(spelling)
    )


__all__ = [
    "BUILTIN_FUNCTIONS",
    "GREEK",
    "Domain",
    "Kind",
    "SymbolSpec",
    "SymbolTable",
    "name_key",
]

Kind = Literal["scalar", "vector", "matrix", "function"]
Domain = Literal["real", "positive", "probability", "label"]

# Names every table knows without declaring them; a declared symbol of the same name wins.
BUILTIN_FUNCTIONS = frozenset(
    {"sigma", "sigmoid", "exp", "log", "ln", "tanh", "sqrt", "inv", "transpose", "abs", "Abs"}
    | {"sin", "cos", "I", "identity", "eye"}
)

GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon",
    "ζ": "zeta", "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda",
    "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau",
    "υ": "upsilon", "φ": "phi", "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Σ": "Sigma", "Φ": "Phi",
    "Ψ": "Psi", "Ω": "Omega",
}  # fmt: skip
_SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_ACCENTS = {"\u0302": "hat", "\u0304": "bar", "\u0303": "tilde"}
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_DIM = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")
_FIELDS = ("kind", "shape", "domain", "aliases", "definition")


@lru_cache(maxsize=8192)
def name_key(spelling: str) -> str:
    """The lookup key of a symbol spelling: ``w_{1}``, ``w_1`` and ``w1`` all give ``w1``.

    Case is kept (``X`` and ``x`` are different symbols); LaTeX wrappers, braces and
    underscores are dropped; Greek letters and accents become their names (``ŷ`` → ``yhat``).
    """
    text = unicodedata.normalize("NFD", spelling.strip().strip("$"))
    for accent, word in _ACCENTS.items():
        text = re.sub(f"(.){accent}", rf"\g<1>{word}", text)
    text = re.sub(r"\\(?:hat|widehat|bar|overline|tilde|widetilde)\s*\{([^{}]*)\}", r"\1hat", text)
    text = re.sub(r"\\(?:mathbf|boldsymbol|bm|mathrm|mathit|vec|mathsf)\s*", "", text)
    text = text.translate(_SUBSCRIPT_DIGITS)
    text = "".join(GREEK.get(ch, ch) for ch in text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)
    return re.sub(r"[\s{}_]", "", text)


@dataclass(frozen=True)
class SymbolSpec:
    """One declared symbol. ``shape`` names dimensions by letter: X is ``("n", "p")``."""

    name: str
    kind: Kind
    shape: tuple[str, ...] = ()
    domain: Domain = "real"
    aliases: tuple[str, ...] = ()
    # A shorthand the grader expands, e.g. a1 = "sigma(w1*x + b1)"; for a function symbol
    # (J) it is the value of the function at the question's variable, ``J(beta)``.
    definition: str | None = None

    def __post_init__(self) -> None:
        _validate_spec(self)


def _validate_spec(spec: SymbolSpec) -> None:
    where = f"symbol {spec.name!r}"
    if not isinstance(spec.name, str) or not (_IDENT.match(spec.name) or spec.name in GREEK):
        raise SpecError(f"symbol name {spec.name!r} must be an identifier such as 'w1' or 'beta'")
    if spec.kind not in get_args(Kind):
        raise SpecError(f"{where}: kind={spec.kind!r} must be one of {', '.join(get_args(Kind))}")
    if spec.domain not in get_args(Domain):
        raise SpecError(
            f"{where}: domain={spec.domain!r} must be one of {', '.join(get_args(Domain))}"
        )
    wanted = {"scalar": 0, "function": 0, "vector": 1, "matrix": 2}[spec.kind]
    if not isinstance(spec.shape, tuple) or len(spec.shape) != wanted:
        raise SpecError(
            f"{where}: shape={list(spec.shape)!r} does not fit kind {spec.kind!r} "
            f"(it needs {wanted} dimension{'s' if wanted != 1 else ''})"
        )
    for dim in spec.shape:
        if not isinstance(dim, str) or not _DIM.match(dim):
            raise SpecError(f"{where}: dimension {dim!r} must be a letter such as 'n' or 'p'")
    if not isinstance(spec.aliases, tuple) or not all(isinstance(a, str) for a in spec.aliases):
        raise SpecError(f"{where}: aliases={spec.aliases!r} must be a list of strings")
    if spec.definition is not None and (
        not isinstance(spec.definition, str) or not spec.definition.strip()
    ):
        raise SpecError(f"{where}: definition={spec.definition!r} must be a non-empty string")


@dataclass
class SymbolTable:
    """The symbols of one question, looked up by any declared spelling.

    Build with :meth:`from_specs` or :meth:`from_mapping`; definitions are read (with the
    grader's own reader) when the table is built, so a broken one is a spec error at load time.
    """

    specs: tuple[SymbolSpec, ...]
    _by_key: dict[str, SymbolSpec] = field(default_factory=dict, repr=False)
    _objects: dict[str, Any] = field(default_factory=dict, repr=False)
    _dims: dict[str, Any] = field(default_factory=dict, repr=False)
    # Read definitions, by canonical name; filled by the reader, owned by this table.
    definitions: dict[str, Any] = field(default_factory=dict, repr=False)
    # What the reader made of texts with this table (see parser.py). A table never changes
    # once built, and reading depends only on the text and the table, so a text read again
    # (the reference formulas for every submission, a common answer) reads the same way.
    readings: Memo[Any, Any] = field(default_factory=lambda: Memo(4096), repr=False, compare=False)
    # Values of expressions at given numbers (see numeric.value_at), for the same reason.
    evaluations: Memo[Any, Any] = field(
        default_factory=lambda: Memo(4096), repr=False, compare=False
    )
    # The known wrong variants of a reference formula, grouped by value (see
    # misconceptions.diagnose): the same for every submission that gets that formula wrong.
    variants: Memo[Any, Any] = field(default_factory=lambda: Memo(256), repr=False, compare=False)

    @classmethod
    def from_specs(cls, specs: Iterable[SymbolSpec]) -> SymbolTable:
        """A table of the given specs; raises SpecError on clashing names or bad definitions."""
        table = cls(specs=tuple(specs))
        for spec in table.specs:
            for spelling in (spec.name, *spec.aliases):
                key = name_key(spelling)
                if not key:
                    raise SpecError(f"symbol {spec.name!r}: alias {spelling!r} is empty")
                other = table._by_key.get(key)
                if other is not None and other.name != spec.name:
                    raise SpecError(
                        f"symbol {spec.name!r}: spelling {spelling!r} is already used by "
                        f"{other.name!r}"
                    )
                table._by_key[key] = spec
            table._objects[spec.name] = table._make_object(spec)
        # Local import: the reader needs a finished table to read the definitions with.
        from grader.checks.math._definitions import load_definitions

        load_definitions(table)
        table.readings.clear()  # read while the definitions were still being filled in
        table.evaluations.clear()
        table.variants.clear()
        return table

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, Any]]) -> SymbolTable:
        """A table from assignment data: ``{"X": {"kind": "matrix", "shape": ["n", "p"]}}``.

        The same data gives the same table object again (built once per process): checks
        build the table of their assignment for every submission, and tables are read-only
        once built. Only plain data (what TOML gives) is remembered, keyed by its exact value.
        """
        key = _plain_key(data)
        if key is None or cls is not SymbolTable:
            return cls._from_mapping(data)
        table = _TABLES.get(key)
        if table is None:
            table = _TABLES.put(key, cls._from_mapping(data))
        return table

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Mapping[str, Any]]) -> SymbolTable:
        if not isinstance(data, Mapping):
            raise SpecError(f"symbols must be a table of names, not {data!r}")
        specs = []
        for name, entry in data.items():
            if not isinstance(entry, Mapping):
                raise SpecError(f"symbol {name!r}: {entry!r} must be a table with a 'kind'")
            unknown = sorted(set(entry) - set(_FIELDS))
            if unknown:
                raise SpecError(
                    f"symbol {name!r}: unknown field {unknown[0]!r} (allowed: {', '.join(_FIELDS)})"
                )
            if "kind" not in entry:
                raise SpecError(f"symbol {name!r}: 'kind' is missing")
            shape = entry.get("shape", [])
            aliases = entry.get("aliases", [])
            for label, value in (("shape", shape), ("aliases", aliases)):
                if isinstance(value, str) or not isinstance(value, list | tuple):
                    raise SpecError(f"symbol {name!r}: {label}={value!r} must be a list")
            specs.append(
                SymbolSpec(
                    name=name,
                    kind=cast(Kind, entry["kind"]),
                    shape=tuple(shape),
                    domain=cast(Domain, entry.get("domain", "real")),
                    aliases=tuple(aliases),
                    definition=entry.get("definition"),
                )
            )
        return cls.from_specs(specs)

    def _make_object(self, spec: SymbolSpec) -> Any:
        if spec.kind == "scalar":
            assumptions = {"positive": True} if spec.domain == "positive" else {"real": True}
            return sympy.Symbol(spec.name, **assumptions)
        if spec.kind == "function":
            return sympy.Function(spec.name)
        rows = self.dim(spec.shape[0])
        cols = self.dim(spec.shape[1]) if spec.kind == "matrix" else sympy.Integer(1)
        return sympy.MatrixSymbol(spec.name, rows, cols)

    def dim(self, letter: str) -> Any:
        """The SymPy symbol of a dimension letter (a positive integer)."""
        if letter not in self._dims:
            self._dims[letter] = sympy.Symbol(letter, integer=True, positive=True)
        return self._dims[letter]

    @property
    def dims(self) -> dict[str, Any]:
        """Every dimension letter used by a declared symbol, with its SymPy symbol."""
        return dict(self._dims)

    def lookup(self, spelling: str) -> SymbolSpec | None:
        """The spec a spelling names (any alias, any LaTeX form), or None."""
        return self._by_key.get(name_key(spelling))

    def lookup_key(self, key: str) -> SymbolSpec | None:
        """The spec for an already normalised key (see :func:`name_key`)."""
        return self._by_key.get(key)

    def uses_t_as_index(self) -> bool:
        """Whether a declared spelling has a ``t`` subscript (``h_t``, ``h_{t-1}``, ``hₜ``):
        then a superscript ``t`` is a time step there too, never a transpose. A name that only
        ends in t (``betahat``, the key of ``\\hat{\\beta}``) says nothing of the kind."""
        return any(
            _has_t_index(spelling) for spec in self.specs for spelling in (spec.name, *spec.aliases)
        )

    def suggest(self, key: str) -> str | None:
        """A declared name that differs from ``key`` only in case, for error messages."""
        for known, spec in self._by_key.items():
            if known.lower() == key.lower():
                return spec.name
        return None

    def object(self, name: str) -> Any:
        """The SymPy object of a canonical name (Symbol, MatrixSymbol or Function class)."""
        return self._objects[name]

    def spec(self, name: str) -> SymbolSpec:
        """The spec of a canonical name."""
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def spec_of(self, obj: Any) -> SymbolSpec | None:
        """The spec whose SymPy object is ``obj`` (by name), or None for foreign symbols."""
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or name not in self._objects:
            return None
        return self.spec(name)

    def names(self) -> list[str]:
        """Canonical names of the variables (not functions), in declaration order."""
        return [s.name for s in self.specs if s.kind != "function"]


_TABLES: Memo[Any, SymbolTable] = Memo(32)


def _plain_key(value: Any) -> Any:
    """A hashable key that equals another only for equal plain data, order and types included;
    None for anything but dicts, lists, tuples, strings, numbers and booleans."""
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            inner = _plain_key(v)
            if not isinstance(k, str) or inner is None:
                return None
            items.append((k, inner))
        return ("dict", tuple(items))
    if isinstance(value, list | tuple):
        parts = []
        for v in value:
            inner = _plain_key(v)
            if inner is None:
                return None
            parts.append(inner)
        return (type(value).__name__, tuple(parts))
    if isinstance(value, str | int | float | bool):
        return (type(value).__name__, value)
    return None
