"""Tokenizer for formulas in Python-math syntax and LaTeX as students write it.

Turns text into a flat list of :class:`Token` with their positions in the original text, so
the parser can point at the column where reading failed. Spacing, ``$`` delimiters, font
commands (``\\mathbf``), ``\\left``/``\\right``, ``\\text{…}`` prose and trailing noise
(``//``, a final ``.``) are dropped here. It never evaluates or imports anything it reads.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from grader.checks.math.symbols import BUILTIN_FUNCTIONS, GREEK, name_key

__all__ = [
    "MAX_DECIMAL_EXPONENT",
    "MAX_NUMBER_DIGITS",
    "MAX_TOKENS",
    "LexError",
    "Token",
    "tokenize",
]

MAX_TOKENS = 3000
MAX_NUMBER_DIGITS = 40
MAX_DECIMAL_EXPONENT = 300


class LexError(Exception):
    """Raised with a student-readable message and the 0-based position of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Token:
    """``kind`` is num, name, op, cmd or end; ``value`` is the normalised content."""

    kind: str
    value: str
    pos: int
    text: str
    space_before: bool = False


_GREEK_COMMANDS = {name for name in GREEK.values()} | {"varepsilon", "varphi", "vartheta"}
_SKIP = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
    "biggr", "displaystyle", "textstyle", "limits", "nolimits", "quad", "qquad", "boxed",
    "mathbb", "mathcal", "middle", "notag", "nonumber",
}  # fmt: skip
_FONTS = {"mathbf", "boldsymbol", "bm", "mathrm", "mathit", "mathsf", "mathtt", "vec",
          "operatorname", "textbf", "textit", "textrm", "text", "mbox", "textsf",
          "texttt"}  # fmt: skip
_PROSE = {"text", "textrm", "textbf", "textit", "mbox", "textsf", "texttt"}
_OPS = {"cdot": "·", "times": "*", "ast": "*", "div": "/", "equiv": "=", "coloneqq": "=",
        "Rightarrow": "⇒", "implies": "⇒", "Longrightarrow": "⇒", "rightarrow": "⇒",
        "longrightarrow": "⇒", "to": "⇒", "therefore": "⇒", "lVert": "‖", "rVert": "‖",
        "Vert": "‖", "lvert": "|", "rvert": "|", "vert": "|", "iff": "⇒",
        "Leftrightarrow": "⇒", "Longleftrightarrow": "⇒"}  # fmt: skip
_CMDS = {"frac": "frac", "dfrac": "frac", "tfrac": "frac", "cfrac": "frac", "sqrt": "sqrt",
         "partial": "partial", "nabla": "nabla", "top": "tmark", "intercal": "tmark",
         "transpose": "tmark"}  # fmt: skip
_FUNCTION_COMMANDS = {"log", "ln", "exp", "tanh", "sin", "cos"}
_UNSUPPORTED = {"sum", "prod", "int", "cdots", "ldots", "dots", "infty", "lim", "max", "min",
                "argmin", "argmax", "approx", "in", "leq", "geq", "le", "ge", "neq", "sim",
                "odot", "otimes", "circ"}  # fmt: skip
_UNICODE_OPS = {"−": "-", "–": "-", "—": "-", "·": "·", "⋅": "·", "∙": "·", "×": "*",
                "∗": "*", "÷": "/", "′": "'", "’": "'", "‖": "‖", "⇒": "⇒", "⟹": "⇒",
                "→": "⇒", "⟶": "⇒", "≔": "=", "≡": "=", "⇔": "⇒", "⟺": "⇒"}  # fmt: skip
_UNICODE_CMDS = {"∂": "partial", "∇": "nabla", "√": "sqrt", "⊤": "tmark"}
_UNICODE_UNSUPPORTED = set("∑∏∫∈≤≥≠≈…⋯∞⊙⊗∘")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_FRACTIONS = {"½": ("1", "2"), "¼": ("1", "4"), "¾": ("3", "4"), "⅓": ("1", "3")}
_MODULES = {"np", "numpy", "sp", "sympy", "math", "torch", "scipy", "linalg", "la", "mp"}

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*[₀-₉]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)", re.DOTALL)
_ACCENT = re.compile(
    r"\\(hat|widehat|bar|overline|tilde|widetilde)\s*"
    r"(?:\{\s*(\\[A-Za-z]+|[A-Za-z])\s*\}|(\\[A-Za-z]+|[A-Za-z]))"
)
# "β ∈ ℝ^p" after a formula only annotates it; it is dropped.
_MEMBERSHIP = re.compile(
    r"(?:\\in\b|∈)\s*(?:\\mathbb\s*\{\s*R\s*\}|\\mathbb\s*R|\\R\b|ℝ)"
    r"(?:\s*\^\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?"
)
_TRAILING_NOISE = {".", ",", ";"}
_DIGITS = "0123456789"
_DIGITS_SET = set(_DIGITS)


def _is_circled_number(ch: str) -> bool:
    return "\u2460" <= ch <= "\u24ff" or "\u2776" <= ch <= "\u2793"


def _matching_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise LexError("a '{' is never closed", start)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.space = False
        # Closing braces of \boxed{…}, dropped with their command: the box only decorates.
        self.skip_at: set[int] = set()

    def emit(self, kind: str, value: str, pos: int, raw: str) -> None:
        if len(self.tokens) >= MAX_TOKENS:
            raise LexError(f"the formula is too long (more than {MAX_TOKENS} symbols)", pos)
        self.tokens.append(Token(kind, value, pos, raw, self.space))
        self.space = False

    def run(self) -> list[Token]:
        text, i = self.text, 0
        while i < len(text):
            ch = text[i]
            if i in self.skip_at or ch.isspace() or ch in "$&~" or _is_circled_number(ch):
                self.space = True
                i += 1
            elif ch == "\\":
                i = self.command(i)
            elif ch.isascii() and ch.isalpha():
                i = self.identifier(i)
            elif ch in _DIGITS or (ch == "." and text[i + 1 : i + 2] in _DIGITS_SET):
                match = _NUMBER.match(text, i)
                assert match is not None
                digits = match.group()
                if len(digits) > MAX_NUMBER_DIGITS:
                    raise LexError(f"the number {digits[:12]}… is too long", i)
                exponent = re.search(r"[eE]([+-]?[0-9]+)$", digits)
                if exponent and abs(int(exponent.group(1))) > MAX_DECIMAL_EXPONENT:
                    raise LexError(f"the number {digits} is too large or too small", i)
                self.emit("num", digits, i, digits)
                i = match.end()
            else:
                i = self.symbol(i)
        while (
            self.tokens
            and self.tokens[-1].kind == "op"
            and self.tokens[-1].value in (_TRAILING_NOISE)
        ):
            self.tokens.pop()
        self.emit("end", "", len(text), "")
        return self.tokens

    def identifier(self, i: int) -> int:
        match = _IDENT.match(self.text, i)
        assert match is not None
        word = match.group()
        end = match.end()
        if word in _MODULES and self.text[end : end + 1] == ".":
            return end + 1  # np.exp(x) is exp(x); the module prefix carries no meaning
        while end < len(self.text) and unicodedata.combining(self.text[end]):
            word += self.text[end]
            end += 1
        self.emit("name", name_key(word), i, self.text[i:end])
        return end

    def command(self, i: int) -> int:
        accent = _ACCENT.match(self.text, i)
        if accent:
            base = accent.group(2) or accent.group(3)
            suffix = "bar" if accent.group(1) in ("bar", "overline") else "hat"
            if accent.group(1) in ("tilde", "widetilde"):
                suffix = "tilde"
            self.emit("name", name_key(base) + suffix, i, accent.group())
            return accent.end()
        membership = _MEMBERSHIP.match(self.text, i)
        if membership:
            self.space = True
            return membership.end()
        match = _COMMAND.match(self.text, i)
        if match is None:
            raise LexError("a '\\' at the end of the formula", i)
        name, end = match.group(1), match.end()
        raw = match.group()
        if name == "tag" and self.text[end:].lstrip().startswith("{"):
            # \tag{1} numbers an equation; it is not part of it.
            start = len(self.text) - len(self.text[end:].lstrip())
            self.space = True
            return _matching_brace(self.text, start) + 1
        if name == "ell":
            self.emit("name", "ell", i, raw)  # ℓ, the loss (see _derivatives)
            return end
        if not name.isalpha():
            return self.escape(name, i, end)
        if name in _FONTS:
            return self.font(name, i, end)
        if name == "boxed" and self.text[end:].lstrip().startswith("{"):
            start = len(self.text) - len(self.text[end:].lstrip())
            self.skip_at.add(_matching_brace(self.text, start))
            return start + 1
        if name in _SKIP:
            self.space = True
            rest = self.text[end:].lstrip()
            if name in ("left", "right") and rest.startswith("."):
                return len(self.text) - len(rest) + 1  # \left. and \right. draw nothing
            return end
        if name in _GREEK_COMMANDS:
            self.emit("name", name.removeprefix("var"), i, raw)
        elif name in _FUNCTION_COMMANDS:
            self.emit("name", name, i, raw)
        elif name in _OPS:
            self.emit("op", _OPS[name], i, raw)
        elif name in _CMDS:
            self.emit("cmd", _CMDS[name], i, raw)
        elif name in _UNSUPPORTED:
            self.emit("cmd", "unsupported", i, raw)
        else:
            raise LexError(f"unknown LaTeX command {raw}", i)
        return end

    def escape(self, char: str, i: int, end: int) -> int:
        if char in ",;:! \n\\[]()":
            self.space = True
        elif char == "|":
            self.emit("op", "‖", i, "\\|")
        elif char in "{}":
            self.emit("op", "(" if char == "{" else ")", i, "\\" + char)
        else:
            raise LexError(f"unexpected '\\{char}'", i)
        return end

    def font(self, name: str, i: int, end: int) -> int:
        rest = self.text[end:]
        stripped = rest.lstrip()
        if not stripped.startswith("{"):
            return end  # \mathbf X: the font applies to the next token, which reads as usual
        start = end + len(rest) - len(stripped)
        close = _matching_brace(self.text, start)
        content = self.text[start + 1 : close].strip()
        word = re.fullmatch(r"[A-Za-z][A-Za-z0-9]*|[0-9]+", content) is not None
        if name in _PROSE and len(content) > 1 and content not in BUILTIN_FUNCTIONS:
            word = word and content.isdigit()  # \text{so}: a word of prose, not a symbol
        if word:
            kind = "num" if content.isdigit() else "name"
            self.emit(kind, content, start + 1, content)
            return close + 1
        if name in _PROSE:
            self.space = True
            return close + 1  # \text{so we get}: prose inside a formula is not part of it
        return end  # \mathbf{X\beta}: keep the braces, they group like parentheses

    def symbol(self, i: int) -> int:
        text, ch = self.text, self.text[i]
        two = text[i : i + 2]
        if two in ("**", "//", ":="):
            if two == "**":
                self.emit("op", "**", i, two)
            elif two == ":=":
                self.emit("op", "=", i, two)
            else:
                self.space = True  # a trailing "//" marks the student's final line
            return i + 2
        if two == "__":
            word = re.match(r"_+[A-Za-z0-9_]*", text[i:])
            shown = word.group() if word else two
            raise LexError(f"'{shown}' is not part of a formula", i)
        if ch in "+-*/^@()[]{},='_|.!;:":
            if ch in "!:":
                raise LexError(f"unexpected '{ch}'", i)
            self.emit("op", ch, i, ch)
        elif ch in _UNICODE_OPS:
            self.emit("op", _UNICODE_OPS[ch], i, ch)
        elif ch in _UNICODE_CMDS:
            self.emit("cmd", _UNICODE_CMDS[ch], i, ch)
        elif ch == "∈" and (membership := _MEMBERSHIP.match(text, i)):
            self.space = True
            return membership.end()
        elif ch == "ℓ":
            self.emit("name", "ell", i, ch)
        elif ch in _UNICODE_UNSUPPORTED:
            self.emit("cmd", "unsupported", i, ch)
        elif ch in _FRACTIONS:
            top, bottom = _FRACTIONS[ch]
            for kind, value in (("op", "("), ("num", top), ("op", "/"), ("num", bottom)):
                self.emit(kind, value, i, ch)
            self.emit("op", ")", i, ch)
        elif ch == "ᵀ":
            self.emit("op", "^", i, ch)
            self.emit("cmd", "tmark", i, ch)
        elif ch in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻":
            end = i
            while end < len(text) and text[end] in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻":
                end += 1
            power = text[i:end].translate(_SUPERSCRIPTS)
            self.emit("op", "^", i, text[i:end])
            self.emit("op", "(", i, text[i:end])
            if power.startswith("-"):
                self.emit("op", "-", i, text[i:end])
                power = power[1:]
            if not power.isdigit():
                raise LexError(f"cannot read the exponent {text[i:end]}", i)
            self.emit("num", power, i, text[i:end])
            self.emit("op", ")", i, text[i:end])
            return end
        elif ch in "₀₁₂₃₄₅₆₇₈₉":
            # After a name they are part of it (W₂); elsewhere a subscript, as ‖v‖₂ is ‖v‖_2.
            end = i
            while end < len(text) and text[end] in "₀₁₂₃₄₅₆₇₈₉":
                end += 1
            self.emit("op", "_", i, text[i:end])
            self.emit("num", text[i:end].translate(_SUBSCRIPTS), i, text[i:end])
            return end
        elif ch in GREEK:
            end = i + 1
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1  # β̂: an accent on a Greek letter (name_key makes it betahat)
            while end < len(text) and text[end] in "0123456789₀₁₂₃₄₅₆₇₈₉":
                end += 1
            self.emit("name", name_key(text[i:end]), i, text[i:end])
            return end
        elif ch.isalpha():
            parts = unicodedata.normalize("NFD", ch)
            if not (parts[0].isascii() and all(unicodedata.combining(c) for c in parts[1:])):
                raise LexError(f"unexpected character {ch!r}", i)
            return self.identifier_from(i, parts)
        else:
            raise LexError(f"unexpected character {ch!r}", i)
        return i + 1

    def identifier_from(self, i: int, decomposed: str) -> int:
        # A precomposed letter such as ŷ: read it as its base letter plus accent name.
        self.emit("name", name_key(decomposed), i, self.text[i])
        return i + 1


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; raises :class:`LexError` pointing at the first bad character."""
    return _Lexer(text).run()
