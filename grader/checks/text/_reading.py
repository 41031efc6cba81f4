"""Reading free text for the rubric scorer: sentences, normalised tokens, stems, negation cues.

Pure, deterministic string processing plus the Snowball English stemmer. It must never touch
the network, load a model, or depend on the machine's locale. A rubric's own phrasings go
through exactly the same normalisation as a student's answer, so a formula or spelling written
in either place meets the other half-way (``XᵀX``, ``X^T X``, ``X'X`` and ``X.T @ X`` all read
as ``x transpose x``; ``minimise`` and ``minimize`` as the same word).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache

import snowballstemmer

__all__ = [
    "FUNCTION_WORDS",
    "Sentence",
    "Token",
    "is_placeholder",
    "normalise",
    "read_answer",
    "split_sentences",
    "tokenize",
]

SEPARATORS = frozenset({",", ";", ":", "→"})

# Function words: skipped inside multi-word phrasings and counted to tell prose from a list of
# keywords. Written out here (no corpus download) so that results never depend on a library.
FUNCTION_WORDS = frozenset(
    """a an the this that these those it its itself they them their there here we us our you
    your i me my he she his her is are was were be been being am do does did doing have has had
    having will would shall should can could may might must of in on at to for from by with
    about into onto upon than then so as and or but if because since while which who whom whose
    what when where why how not no nor each every all any some such
    both either neither more most less same other another own one 1 via per whereas although
    though thus hence therefore""".split()
)

# Words and marks that end the reach of a negation ("not treated independently *by* keeping a
# hidden state" must not negate the hidden state).
SCOPE_BREAKS = SEPARATORS | frozenset(
    """and but so because since as which that who whom whose while whilst whereas although
    though by through via thus hence therefore then when where if unless until instead rather
    unlike however allowing meaning""".split()
)

NEGATION_CUES = frozenset(
    "not no never none nothing neither nor without non unlike nobody nowhere hardly barely".split()
)
# "not only", "no matter", ... are not negations; "instead of" and "rather than" are.
_NOT_A_NEGATION_BEFORE = frozenset("only just merely matter doubt".split())
_NEGATING_PAIRS = {"instead": "of", "rather": "than"}
NEGATION_REACH = 2  # content words allowed between a cue and the word it negates

# A Snowball stemmer keeps the word it is working on, so each thread gets its own.
_LOCAL = threading.local()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of one normalised word (numbers and separators are their own stem)."""
    if not word.isalpha():
        return word
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        stemmer = _LOCAL.stemmer = snowballstemmer.stemmer("english")
    return str(stemmer.stemWord(word))


@dataclass(frozen=True)
class Token:
    """One normalised word (lower case, spelling unified) or a clause separator."""

    word: str
    stem: str

    @property
    def separator(self) -> bool:
        return self.word in SEPARATORS


PREFIX_INDEXED = 24  # longer rubric prefixes are compared with every token instead


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer: the student's own text and its tokens."""

    text: str
    tokens: tuple[Token, ...]
    cues: frozenset[int]  # positions of tokens that negate what follows them

    @cached_property
    def stem_positions(self) -> dict[str, tuple[int, ...]]:
        """Where each stem occurs (separators left out), in order: lets the scorer find a
        rubric word without comparing it with every token of the sentence."""
        index: dict[str, list[int]] = {}
        for k, token in enumerate(self.tokens):
            if not token.separator:
                index.setdefault(token.stem, []).append(k)
        return {stem: tuple(positions) for stem, positions in index.items()}

    @cached_property
    def prefix_positions(self) -> dict[str, tuple[int, ...]]:
        """Where each beginning (up to ``PREFIX_INDEXED`` letters) of a token's word or stem
        occurs, in order: a rubric's prefix words ("generalis*") are looked up here."""
        index: dict[str, list[int]] = {}
        for k, token in enumerate(self.tokens):
            if token.separator:
                continue
            starts = {
                text[:end]
                for text in (token.word, token.stem)
                for end in range(1, min(len(text), PREFIX_INDEXED) + 1)
            }
            for start in starts:
                index.setdefault(start, []).append(k)
        return {start: tuple(positions) for start, positions in index.items()}

    @property
    def words(self) -> tuple[str, ...]:
        """The prose words (no separators, numbers or one-letter symbols except "a" and "i")."""
        return tuple(
            t.word
            for t in self.tokens
            if t.word.isalpha() and (len(t.word) > 1 or t.word in {"a", "i"})
        )


# --- normalisation ------------------------------------------------------------------------

_SUPERSCRIPTS = {
    **{c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")},
    "⁻": "-",
    "⁺": "+",
    "ᵀ": "T",
    "ⁿ": "n",
    "ᵗ": "t",
}
_SUBSCRIPTS = {**{c: str(i) for i, c in enumerate("₀₁₂₃₄₅₆₇₈₉")}, "ₜ": "t", "ᵢ": "i", "₋": "-"}
_SUPER_RUN = re.compile("[" + "".join(_SUPERSCRIPTS) + "]+")
_SUB_RUN = re.compile("[" + "".join(_SUBSCRIPTS) + "]+")

_CHARACTERS = {
    "α": " alpha ",
    "β": " beta ",
    "γ": " gamma ",
    "δ": " delta ",
    "Δ": " delta ",
    "ε": " epsilon ",
    "ϵ": " epsilon ",
    "η": " eta ",
    "θ": " theta ",
    "λ": " lambda ",
    "μ": " mu ",
    "σ": " sigma ",
    "τ": " tau ",
    "φ": " phi ",
    "ω": " omega ",
    "Σ": " sum ",
    "∑": " sum ",
    "∏": " product ",
    "∇": " nabla ",
    "∂": " partial ",
    "∞": " infinity ",
    "ŷ": " yhat ",
    "≈": " approx ",
    "≃": " approx ",
    "∼": " approx ",
    "≠": " not equal ",
    "→": " → ",
    "⇒": " → ",
    "⟹": " → ",
    "⟶": " → ",
    "↦": " → ",
    "—": " , ",
    "−": "-",
    "–": "-",
    "’": "'",
    "‘": "'",
    "…": "...",
}

# Ordered (pattern, replacement) rewrites for LaTeX and plain-text maths; case-sensitive, so they
# run before case folding.
_MATHS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        # one level of nested braces, as in \frac{\partial c_t}{\partial c_{t-1}}
        (
            r"\\(?:d|t)?frac\s*\{((?:[^{}]|\{[^{}]*\})*)\}\s*\{((?:[^{}]|\{[^{}]*\})*)\}",
            r" \1 / \2 ",
        ),
        (r"\\(?:hat|widehat)\s*(?:\{\s*([A-Za-z])\s*\}|([A-Za-z])\b)", r" \1\2hat "),
        (r"\b([A-Za-z])_hat\b", r" \1hat "),
        (
            r"\\(?:text|mathrm|mathbf|mathit|mathsf|mathcal|boldsymbol|bm|operatorname|textbf|textit)"
            r"\s*\{([^{}]*)\}",
            r" \1 ",
        ),
        (r"\^\s*(?:\{\s*(?:T|\\top|\\intercal)\s*\}|T|\\top\b|\\intercal\b)", " transpose "),
        (r"(?<=[A-Za-z0-9)\]])\.T\b", " transpose "),
        (r"(?<![A-Za-z'])([A-HJ-Z])'(?!s\b)", r"\1 transpose "),
        (r"(?:\^|\*\*)\s*[{(]?\s*-\s*1\s*[})]?", " inverse "),
        (r"\binv\b", " inverse "),
        (r"(?:\^|\*\*)\s*\{?\s*2\s*\}?(?![0-9])", " squared "),
        (r"(?:\^|\*\*)\s*\{?\s*3\s*\}?(?![0-9])", " cubed "),
        (r"(?:\^|\*\*)\s*\{?\s*([A-Za-z0-9]+)\s*\}?", r" power \1 "),
        (r"\\(?:rightarrow|Rightarrow|to|implies|longrightarrow|Longrightarrow|mapsto)\b", " → "),
        (r"-+>|=+>", " → "),
        (r"\\(?:approx|sim|simeq|eqsim)\b|~", " approx "),
        (r"\\neq?\b|!=", " not equal "),
        (r"\\(?:left|right|[bB]igg?[lr]?|quad|qquad|cdot|times|odot|circ|displaystyle)\b", " "),
        (r"\\([A-Za-z]+)", r" \1 "),
        (r"\\.", " "),
        (r"[$\{\}&_^~*@|=<>≤≥()\[\]/+\"`#]", " "),
    )
)

_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\b(?:can't|cannot|cant)\b", "can not"),
        (r"\b(?:won't|wont)\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"n't\b", " not"),
        (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must)nt\b", r"\1 not"),
        (r"'s\b", ""),
        (r"'", " "),
        (r"-", " "),
        # British and American spellings become one word before stemming.
        (r"\b([^\W\d_]{3,})is(e|es|ed|ing|ation|ations|er|ers)\b", r"\1iz\2"),
        (r"\b([^\W\d_]{2,})ys(e|es|ed|ing)\b", r"\1yz\2"),
        (r"\bzero\b", "0"),
        (r"\bone\b", "1"),
    )
)

# An acronym's plural ("RNNs", "LSTMs", "GRUs") is the acronym: the stemmer, which sees only the
# lower-cased "rnns", would keep the s. Capitals tell it apart from a word ("gas", "bus").
_ACRONYM_PLURAL = re.compile(r"\b([A-Z]{2,})s\b")

_TOKEN = re.compile(r"→|[,;:]|[^\W_]+(?:\.[0-9]+)?")
_SPLIT_SYMBOL = re.compile(r"^([a-z]{1,2})([0-9]+)$")


def normalise(text: str) -> str:
    """Lower-case text with maths, symbols, contractions and spellings unified."""
    text = re.sub(r"~~.*?~~", " ", text, flags=re.DOTALL)  # struck-out words were deleted
    text = unicodedata.normalize("NFC", text)
    text = _SUPER_RUN.sub(lambda m: "^{" + "".join(_SUPERSCRIPTS[c] for c in m[0]) + "}", text)
    text = _SUB_RUN.sub(lambda m: "_{" + "".join(_SUBSCRIPTS[c] for c in m[0]) + "}", text)
    text = "".join(_CHARACTERS.get(c, c) for c in text)
    for pattern, replacement in _MATHS:
        text = pattern.sub(replacement, text)
    text = _ACRONYM_PLURAL.sub(r"\1", text)  # before case folding, which loses the capitals
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    for pattern, replacement in _WORDS:
        text = pattern.sub(replacement, text)
    return text


def tokenize(normalised: str) -> tuple[Token, ...]:
    """Split normalised text into words and separators; ``a1`` reads as ``a 1`` like ``a_1``."""
    out: list[Token] = []
    for match in _TOKEN.finditer(normalised):
        word = match[0]
        split = _SPLIT_SYMBOL.match(word)
        parts = [split[1], split[2]] if split else [word]
        out.extend(Token(part, stem(part)) for part in parts)
    return tuple(out)


def negation_cues(tokens: tuple[Token, ...]) -> frozenset[int]:
    """Positions of the tokens that negate what follows them."""
    cues = set()
    for i, token in enumerate(tokens):
        following = tokens[i + 1].word if i + 1 < len(tokens) else ""
        if token.word in NEGATION_CUES and following not in _NOT_A_NEGATION_BEFORE:
            cues.add(i)
        elif _NEGATING_PAIRS.get(token.word) == following:
            cues.add(i)
    return frozenset(cues)


# --- sentences -----------------------------------------------------------------------------

# Enumeration marks and bullets at the start of a line: "a)", "(b)", "1.", "-", "•", "①".
_LABEL = re.compile(
    r"^\s*(?:(?:[-*+•>#]+|\(?(?:[a-h]|[ivx]{1,4}|[0-9]{1,2})[).](?=\s|$)|[\u2460-\u2473])\s*)+",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(r"[.!?]+(?=\s|$)")
_ABBREVIATIONS = frozenset("e.g i.e etc vs cf approx fig eq resp al viz w.r.t wrt ca nb".split())
_WRAPPED_LINE = 40  # a prose line this long that ends mid-sentence continues on the next


def split_sentences(answer: str) -> list[str]:
    """The answer's sentences as the student wrote them (whitespace collapsed)."""
    answer = re.sub(r"~~.*?~~", " ", answer, flags=re.DOTALL)
    chunks: list[str] = []
    current = ""
    last_line = ""
    for raw_line in answer.splitlines():
        line = raw_line.strip()
        labelled = _LABEL.match(line) is not None
        line = _LABEL.sub("", line).strip()
        if not line:
            if current:
                chunks.append(current)
            current = last_line = ""
            continue
        # A long prose line that stops mid-sentence was wrapped; short lines ("Too large =
        # overshoot") and enumerated ones stand alone. Case is ignored on purpose.
        wrapped = len(last_line) >= _WRAPPED_LINE and re.search(r"[^\W_],?$", last_line)
        if current and wrapped and not labelled:
            current = f"{current} {line}"
        else:
            if current:
                chunks.append(current)
            current = line
        last_line = line
    if current:
        chunks.append(current)
    sentences: list[str] = []
    for chunk in chunks:
        start = 0
        for match in _BOUNDARY.finditer(chunk):
            before = re.search(r"(\S+)$", chunk[start : match.start()])
            if before and before[1].casefold().lstrip("(") in _ABBREVIATIONS:
                continue
            sentences.append(chunk[start : match.end()])
            start = match.end()
        sentences.append(chunk[start:])
    return [" ".join(s.split()) for s in sentences if s.strip()]


def read_answer(answer: str) -> tuple[Sentence, ...]:
    """Split an answer into sentences and tokenize each; sentences without words are dropped."""
    out = []
    for text in split_sentences(answer):
        tokens = tokenize(normalise(text))
        if any(not t.separator for t in tokens):
            out.append(Sentence(text=text, tokens=tokens, cues=negation_cues(tokens)))
    return tuple(out)


_PLACEHOLDER = re.compile(
    r"(?:(?:write|type|put|enter) )?(?:your )?answer(?: goes)?(?: here)?|todo|tbd|tba|"
    r"fill(?: this)? in|n ?a|none|nothing|not answered|no answer|x+|",
)


def is_placeholder(answer: str) -> bool:
    """True for an empty answer or a template placeholder such as "Your answer here"."""
    words = " ".join(re.findall(r"[^\W_]+", answer.casefold()))
    return _PLACEHOLDER.fullmatch(words) is not None
