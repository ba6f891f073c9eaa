"""Turning an LLM reply into a new program, with a reason for every failure.

Two reply formats are understood:

* **diffs**: SEARCH/REPLACE blocks (``<<<<<<< SEARCH`` / ``=======`` /
  ``>>>>>>> REPLACE``) applied to the parent program in order, see
  :func:`apply_diff`. Each SEARCH block is located exactly, then tolerantly
  (trailing whitespace, a common indentation offset, blank lines), then by
  nearest match above a similarity threshold.
* **rewrites**: fenced code holding new evolve regions (between the EVOLVE
  markers, as a whole program, or as the bare body of a one-region template),
  see :func:`apply_rewrite`.

Either way only the evolve regions may change: the fixed parts of the program,
marker lines included, are kept byte for byte, and the result must parse. Every
failure raises :class:`ApplyError` whose ``reason`` names the kind of failure,
so that the proposer can count failures by kind and tell the model what went
wrong.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from evoforge.problem.blocks import (
    END_MARKER,
    START_MARKER,
    BlockError,
    Template,
    extract_regions,
    parse_blocks,
)

__all__ = [
    "REASONS",
    "ApplyError",
    "ApplyResult",
    "apply_diff",
    "apply_rewrite",
    "detect_truncation",
    "extract_code_blocks",
    "parse_search_replace",
    "regions_spans",
]

REASONS = frozenset(
    {
        "no_code",
        "no_edits",
        "search_not_found",
        "ambiguous",
        "outside_regions",
        "truncated",
        "syntax_error",
        "unchanged",
        "wrong_regions",
    }
)
"""Every value :attr:`ApplyError.reason` can take."""

PYTHON_LANGUAGES = frozenset({"", "python", "py", "python3", "py3"})
"""Fence info strings taken as Python code (``""``: no language given)."""

_TRUNCATED_FINISH = frozenset({"length", "max_tokens"})
# a fuzzy match must beat a runner-up (that does not overlap it) by this much
_FUZZY_MARGIN = 0.02
# window sizes tried around the SEARCH block's line count in fuzzy matching
_FUZZY_SLACK = 2
# placements of a SEARCH block scored character by character in fuzzy matching
_FUZZY_ALIGNMENTS = 6
# a placement whose window scores this much under the threshold is not explored further
_FUZZY_EXPLORE = 0.15
# least word-set similarity of a SEARCH line and a program line to suggest a placement
_LINE_VOTE = 0.5
_WORD_RE = re.compile(r"\w+|[^\w\s]+")

_FENCE_OPEN_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FENCE_CLOSE_RE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")
_SEARCH_RE = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b.*$")
_DIVIDER_RE = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE_RE = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE\b.*$")
_MARKER_RE = re.compile(rf"^[ \t]*#[ \t]*(?:{START_MARKER}|{END_MARKER})\b")
# Python's own line ends only, as in evoforge.problem.blocks
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


class ApplyError(ValueError):
    """A reply that could not be turned into a new program.

    Attributes:
        reason: the kind of failure, one of :data:`REASONS`.
        message: what went wrong, for people (and for the model's next prompt).
    """

    def __init__(self, reason: str, message: str) -> None:
        """Create the error.

        Args:
            reason: the kind of failure, one of :data:`REASONS`.
            message: a human-readable explanation.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown apply failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass
class ApplyResult:
    """A new program made from a reply.

    Attributes:
        code: the full new program.
        edits: SEARCH/REPLACE edits applied (diffs), or regions changed (rewrites).
        match_levels: per edit, how its SEARCH block was found: ``exact``,
            ``whitespace`` or ``fuzzy`` (empty for rewrites).
        similarity: per edit, the similarity of the matched text to the SEARCH
            block: 1.0 for exact and whitespace matches, the
            ``difflib.SequenceMatcher`` ratio for fuzzy ones (empty for rewrites).
    """

    code: str
    edits: int
    match_levels: list[str] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)

    @property
    def min_similarity(self) -> float:
        """The lowest per-edit similarity (1.0 when there is none)."""
        return min(self.similarity, default=1.0)


# --- reply parsing ------------------------------------------------------------------


@dataclass
class _Fence:
    lang: str
    body: str
    closed: bool


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strip_indent(line: str, width: int) -> str:
    """Remove up to ``width`` leading blanks from ``line``."""
    i = 0
    while i < width and i < len(line) and line[i] in " \t":
        i += 1
    return line[i:]


def _scan_fences(text: str) -> list[_Fence]:
    """All fenced blocks of ``text``, closed or not, in order."""
    lines = _normalize_newlines(text).split("\n")
    fences: list[_Fence] = []
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN_RE.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence = opening["fence"]
        width = len(opening["indent"])
        info = opening["info"].strip()
        lang = info.split()[0].lower() if info else ""
        body: list[str] = []
        closed = False
        i += 1
        while i < len(lines):
            closing = _FENCE_CLOSE_RE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
            ):
                closed = True
                break
            body.append(_strip_indent(lines[i], width))
            i += 1
        if not closed and body and body[-1] == "":
            body.pop()  # the text's final newline
        fences.append(_Fence(lang, "".join(line + "\n" for line in body), closed))
        i += 1
    return fences


def extract_code_blocks(text: str, languages: Collection[str] | None = None) -> list[str]:
    """Return the contents of the closed fenced code blocks of ``text``, in order.

    Backtick and tilde fences of three or more characters are recognized, with or
    without a language (```` ```python ````, ```` ```py ````, ```` ``` ````,
    ``~~~``). CRLF and CR line ends are read as LF; every returned block ends with
    a newline unless it is empty. A block left open at the end of the text
    (a truncated reply) is not returned.

    Args:
        text: the reply.
        languages: if given, only blocks whose (lower-cased) language is in it;
            ``""`` stands for blocks without a language.

    Returns:
        The block contents.
    """
    wanted = None if languages is None else {lang.lower() for lang in languages}
    return [
        fence.body
        for fence in _scan_fences(text)
        if fence.closed and (wanted is None or fence.lang in wanted)
    ]


def _strip_inner_fence(lines: list[str]) -> list[str]:
    """Drop a fence wrapped around a SEARCH or REPLACE section's lines."""
    if (
        len(lines) >= 2
        and _FENCE_OPEN_RE.match(lines[0]) is not None
        and _FENCE_CLOSE_RE.match(lines[-1]) is not None
    ):
        return lines[1:-1]
    return lines


def _scan_search_replace(text: str) -> tuple[list[tuple[str, str]], bool]:
    """Parse the SEARCH/REPLACE blocks of ``text``.

    Returns:
        The (search, replace) pairs and whether the text ends inside a block.

    Raises:
        ApplyError: ``no_edits`` for a malformed block (a missing divider, or a
            block opened inside another one).
    """
    pairs: list[tuple[str, str]] = []
    state = "out"
    search: list[str] = []
    replace: list[str] = []
    start_line = 0
    for number, line in enumerate(_normalize_newlines(text).split("\n"), start=1):
        if state == "out":
            if _SEARCH_RE.match(line):
                state, search, replace, start_line = "search", [], [], number
            continue
        if _SEARCH_RE.match(line):
            raise ApplyError(
                "no_edits",
                f"malformed SEARCH/REPLACE block at line {start_line}: a new SEARCH "
                f"marker at line {number} before the block's REPLACE marker",
            )
        if state == "search":
            if _DIVIDER_RE.match(line):
                state = "replace"
            elif _REPLACE_RE.match(line):
                raise ApplyError(
                    "no_edits",
                    f"malformed SEARCH/REPLACE block at line {start_line}: "
                    "no ======= line between SEARCH and REPLACE",
                )
            else:
                search.append(line)
        elif _REPLACE_RE.match(line):
            search_lines = _strip_inner_fence(search)
            replace_lines = _strip_inner_fence(replace)
            pairs.append(
                (
                    "".join(x + "\n" for x in search_lines),
                    "".join(x + "\n" for x in replace_lines),
                )
            )
            state = "out"
        else:
            replace.append(line)
    return pairs, state != "out"


def parse_search_replace(text: str) -> list[tuple[str, str]]:
    """Return the (search, replace) pairs of the SEARCH/REPLACE blocks in ``text``.

    The format is::

        <<<<<<< SEARCH
        lines to find
        =======
        lines to put instead
        >>>>>>> REPLACE

    with 5 to 9 marker characters, optionally inside code fences. CRLF line ends
    are read as LF. Each returned text ends with a newline unless empty.

    Args:
        text: the reply.

    Returns:
        The pairs in reply order (empty when the reply has none).

    Raises:
        ApplyError: ``truncated`` when a block is still open at the end of the
            text; ``no_edits`` for a malformed block.
    """
    pairs, open_block = _scan_search_replace(text)
    if open_block:
        raise ApplyError("truncated", "the reply ends inside a SEARCH/REPLACE block")
    return pairs


def detect_truncation(text: str, finish_reason: str | None = None) -> bool:
    """Tell whether a reply was cut off.

    Args:
        text: the reply.
        finish_reason: what the endpoint said; ``length`` (or ``max_tokens``)
            means the completion limit was hit.

    Returns:
        True on a length finish reason, a code fence left open, or a
        SEARCH/REPLACE block left open.
    """
    if finish_reason in _TRUNCATED_FINISH:
        return True
    if any(not fence.closed for fence in _scan_fences(text)):
        return True
    try:
        _, open_block = _scan_search_replace(text)
    except ApplyError:
        return False
    return open_block


# --- spans and lines ----------------------------------------------------------------


def regions_spans(template: Template) -> list[tuple[int, int]]:
    """Return the ``[start, end)`` character spans of the regions in ``template.source``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for fixed, region in zip(template.fixed, template.regions, strict=False):
        pos += len(fixed)
        if region and not region.endswith(("\n", "\r")):
            region += "\n"  # as Template.render does
        spans.append((pos, pos + len(region)))
        pos += len(region)
    return spans


def _parent_template(template: Template, parent_code: str) -> Template:
    """Parse ``parent_code``, which must be a rendering of ``template``.

    Raises:
        BlockError: if it is not (a caller error, not a bad reply).
    """
    parent = parse_blocks(parent_code)
    if parent.fixed != template.fixed:
        raise BlockError("parent_code is not a rendering of the template")
    return parent


def _newline_of(code: str) -> str:
    return "\r\n" if "\r\n" in code else "\n"


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shift_between(source: str, target: str) -> tuple[str, str]:
    """The minimal (from, to) indentation rewrite that maps ``source`` onto ``target``."""
    n = 0
    while n < min(len(source), len(target)) and source[-1 - n] == target[-1 - n]:
        n += 1
    return source[: len(source) - n], target[: len(target) - n]


def _shift_line(line: str, shift: tuple[str, str]) -> str:
    old, new = shift
    if not line.strip() or old == new:
        return line
    if line.startswith(old):
        return new + line[len(old) :]
    return new + line.lstrip(" \t")


def _min_indent(lines: list[str]) -> str:
    indents = [_indent_of(line) for line in lines if line.strip()]
    return min(indents, key=len, default="")


@dataclass
class _Lines:
    """A program's lines: raw (with ends), stripped of trailing blanks, offsets."""

    raw: list[str]
    text: list[str]
    starts: list[int]

    @classmethod
    def of(cls, code: str) -> _Lines:
        raw = _LINE_RE.findall(code)
        starts: list[int] = []
        pos = 0
        for line in raw:
            starts.append(pos)
            pos += len(line)
        return cls(raw, [line.rstrip() for line in raw], starts)

    def span(self, first: int, last: int) -> tuple[int, int]:
        return self.starts[first], self.starts[last] + len(self.raw[last])

    def ending(self, index: int) -> str:
        raw = self.raw[index]
        return raw[len(raw.rstrip("\r\n")) :]


# --- locating a SEARCH block --------------------------------------------------------


@dataclass
class _Match:
    start: int
    end: int
    level: str
    score: float = 1.0
    shift: tuple[str, str] | None = None  # None: exact text, no re-indentation
    ending: str = "\n"  # line end of the last matched line


@dataclass
class _Change:
    """Replace ``code[start:end]`` by ``text``."""

    start: int
    end: int
    text: str


def _replacement(replace: str, match: _Match, newline: str) -> str:
    if match.shift is None:
        return replace.replace("\n", newline) if newline != "\n" else replace
    lines = [_shift_line(line, match.shift) for line in replace.split("\n")[:-1]]
    if not lines:
        return ""
    return newline.join(lines) + match.ending


def _narrow(code: str, match: _Match, replace: str, newline: str) -> _Change:
    """The change an edit makes, without the leading and trailing lines it keeps.

    Lines equal up to trailing whitespace at both ends of the matched text and of
    the replacement are left as they are in ``code``, so that context lines a
    SEARCH block copies from outside the regions (a marker line, say) are no
    change.
    """
    new_lines = _LINE_RE.findall(_replacement(replace, match, newline))
    old_lines = _LINE_RE.findall(code[match.start : match.end])
    most = min(len(old_lines), len(new_lines))
    head = 0
    while head < most and old_lines[head].rstrip() == new_lines[head].rstrip():
        head += 1
    tail = 0
    while tail < most - head and old_lines[-1 - tail].rstrip() == new_lines[-1 - tail].rstrip():
        tail += 1
    start = match.start + sum(len(line) for line in old_lines[:head])
    end = match.end - sum(len(line) for line in old_lines[len(old_lines) - tail :])
    return _Change(start, end, "".join(new_lines[head : len(new_lines) - tail]))


def _inside(change: _Change, regions: list[tuple[int, int]]) -> bool:
    """Whether ``change`` touches only text inside one region."""
    if change.start == change.end:
        return not change.text or any(lo <= change.start <= hi for lo, hi in regions)
    return any(lo <= change.start and change.end <= hi for lo, hi in regions)


_OUTSIDE_MESSAGE = (
    "the edit changes text outside the evolve regions; only the code between "
    f"'# {START_MARKER}' and '# {END_MARKER}' may change"
)


def _choose(
    matches: list[_Match],
    code: str,
    replace: str,
    newline: str,
    regions: list[tuple[int, int]],
) -> tuple[_Match, _Change]:
    """The one match whose change stays inside the regions, or why there is none."""
    changes = [(match, _narrow(code, match, replace, newline)) for match in matches]
    inside = [(match, change) for match, change in changes if _inside(change, regions)]
    if len(inside) == 1:
        return inside[0]
    if inside:
        raise ApplyError(
            "ambiguous",
            f"the SEARCH block matches {len(inside)} places inside the evolve regions "
            f"({matches[0].level} match); add surrounding lines to make it unique",
        )
    raise ApplyError("outside_regions", _OUTSIDE_MESSAGE)


def _find_exact(code: str, needle: str) -> list[_Match]:
    matches: list[_Match] = []
    pos = code.find(needle)
    while pos != -1:
        if pos == 0 or code[pos - 1] in "\r\n":
            matches.append(_Match(pos, pos + len(needle), "exact"))
        pos = code.find(needle, pos + 1)
    return matches


def _find_whitespace(lines: _Lines, search: list[str]) -> list[_Match]:
    wanted = [line.rstrip() for line in search if line.strip()]
    text = lines.text
    matches: list[_Match] = []
    for first in range(len(text)):
        if not text[first]:
            continue
        j = first
        shift: tuple[str, str] | None = None
        ok = True
        for want in wanted:
            while j < len(text) and not text[j]:
                j += 1
            if j >= len(text) or text[j].lstrip() != want.lstrip():
                ok = False
                break
            pair = _shift_between(_indent_of(want), _indent_of(text[j]))
            if shift is None:
                shift = pair
            elif pair != shift:
                ok = False
                break
            j += 1
        if ok and shift is not None:
            last = j - 1
            start, end = lines.span(first, last)
            matches.append(_Match(start, end, "whitespace", 1.0, shift, lines.ending(last)))
    return matches


def _dedented(lines: list[str]) -> tuple[str, str]:
    """Join ``lines`` with their common indentation removed; also return that indentation."""
    indent = _min_indent(lines)
    return "\n".join(_shift_line(line, (indent, "")) for line in lines), indent


def _word_set(line: str) -> frozenset[str]:
    return frozenset(_WORD_RE.findall(line))


def _alignments(text: list[str], wanted: list[str]) -> list[int]:
    """Likely placements of a SEARCH block, best first.

    Every pair of a SEARCH line and a program line whose sets of words and
    operators are similar enough votes (with that similarity) for the offset
    ``program line - search line``.

    Returns:
        The most voted offsets.
    """
    program = [_word_set(line) for line in text]
    votes: dict[int, float] = {}
    for k, line in enumerate(wanted):
        words = _word_set(line)
        if not words:
            continue
        for j, other in enumerate(program):
            common = len(words & other)
            if common:
                vote = common / (len(words) + len(other) - common)
                if vote >= _LINE_VOTE:
                    votes[j - k] = votes.get(j - k, 0.0) + vote
    return sorted(votes, key=lambda d: (-votes[d], d))[:_FUZZY_ALIGNMENTS]


def _find_fuzzy(lines: _Lines, search: list[str], threshold: float) -> tuple[list[_Match], float]:
    """Windows of the program whose similarity to ``search`` is at least ``threshold``.

    A window of lines is scored by the ``difflib.SequenceMatcher`` ratio of its
    text and the SEARCH text, both with trailing whitespace and their common
    indentation removed. The window of the SEARCH block's line count at each of
    its likeliest placements (see :func:`_alignments`) is scored; where that comes
    close to the threshold, the window's ends are moved a line at a time (up to two
    lines shorter or longer than the SEARCH block) while the score improves.

    Returns:
        The matches, best first, and the best score seen (for messages).
    """
    wanted = [line.rstrip() for line in search]
    while wanted and not wanted[0]:
        wanted.pop(0)
    while wanted and not wanted[-1]:
        wanted.pop()
    if not wanted:
        return [], 0.0
    search_text, search_indent = _dedented(wanted)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(search_text)
    text = lines.text
    n = len(wanted)
    rated: dict[tuple[int, int], tuple[float, bool]] = {}  # ratio, or an upper bound

    def rate(first: int, last: int, floor: float) -> float:
        """The window's ratio, or 0.0 when it certainly is below ``floor``."""
        known, exact = rated.get((first, last), (1.0, False))
        if exact or known < floor:
            return known if exact else 0.0
        matcher.set_seq1(_dedented(text[first : last + 1])[0])
        bound = min(matcher.real_quick_ratio(), matcher.quick_ratio())
        if bound < floor:
            rated[first, last] = (bound, False)
            return 0.0
        value = matcher.ratio()
        rated[first, last] = (value, True)
        return value

    def step(index: int, direction: int) -> int:
        """The next non-blank line from ``index`` in ``direction`` (-1 if none)."""
        index += direction
        while 0 <= index < len(text) and not text[index]:
            index += direction
        return index if 0 <= index < len(text) else -1

    best = 0.0
    for offset in _alignments(text, wanted):
        size = min(n, len(text))
        first = min(max(offset, 0), len(text) - size)
        last = first + size - 1
        if not text[first]:
            first = step(first, 1)
        if not text[last]:
            last = step(last, -1)
        if not 0 <= first <= last or (first, last) in rated:
            continue
        value = rate(first, last, 0.0)
        best = max(best, value)
        if value < threshold - _FUZZY_EXPLORE:
            continue
        # climb: move either end of the window by a line while the ratio improves
        while True:
            moves = [
                (step(first, -1), last),
                (step(first, 1), last),
                (first, step(last, -1)),
                (first, step(last, 1)),
                (step(first, -1), step(last, -1)),
                (step(first, 1), step(last, 1)),
            ]
            options = [
                (rate(lo, hi, value), lo, hi)
                for lo, hi in moves
                if 0 <= lo <= hi and abs(hi - lo + 1 - n) <= _FUZZY_SLACK
            ]
            top = max(options, default=(0.0, first, last))
            if top[0] <= value:
                break
            value, first, last = top
        best = max(best, value)
    scored: list[tuple[float, int, int, int, str]] = []  # score, -|w-n|, first, last, indent
    for (first, last), (value, exact) in rated.items():
        if exact and value >= threshold and text[first] and text[last]:
            indent = _dedented(text[first : last + 1])[1]
            scored.append((value, -abs(last - first + 1 - n), first, last, indent))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    matches: list[_Match] = []
    for value, _, first, last, indent in scored:
        start, end = lines.span(first, last)
        shift = _shift_between(search_indent, indent)
        matches.append(_Match(start, end, "fuzzy", value, shift, lines.ending(last)))
    return matches, best


def _locate(
    code: str,
    search: str,
    replace: str,
    regions: list[tuple[int, int]],
    newline: str,
    threshold: float,
) -> tuple[_Match, _Change]:
    """Find where ``search`` applies in ``code``: exact, whitespace-tolerant, then fuzzy."""
    needle = search.replace("\n", newline) if newline != "\n" else search
    exact = _find_exact(code, needle)
    if exact:
        return _choose(exact, code, replace, newline, regions)
    lines = _Lines.of(code)
    search_lines = search.split("\n")[:-1]
    tolerant = _find_whitespace(lines, search_lines)
    if tolerant:
        return _choose(tolerant, code, replace, newline, regions)
    fuzzy, best = _find_fuzzy(lines, search_lines, threshold)
    if not fuzzy:
        raise ApplyError(
            "search_not_found",
            "the SEARCH block does not match the program "
            f"(best similarity {best:.2f} < {threshold:.2f}); copy the lines to replace "
            "exactly as they are",
        )
    top = fuzzy[0]
    change = _narrow(code, top, replace, newline)
    if not _inside(change, regions):
        raise ApplyError("outside_regions", _OUTSIDE_MESSAGE)
    for other in fuzzy[1:]:
        if other.end <= top.start or other.start >= top.end:  # not overlapping the best
            if top.score - other.score < _FUZZY_MARGIN:
                raise ApplyError(
                    "ambiguous",
                    "the SEARCH block nearly matches several places "
                    f"(similarity {top.score:.3f} and {other.score:.3f}); copy the lines "
                    "to replace exactly",
                )
            break
    return top, change


def _check_result(template: Template, code: str, parent_code: str) -> None:
    """Check that ``code`` keeps the fixed parts, changed and parses."""
    try:
        extract_regions(template, code)
    except BlockError as exc:
        raise ApplyError(
            "outside_regions", f"the edits changed text outside the evolve regions ({exc})"
        ) from exc
    if code == parent_code:
        raise ApplyError("unchanged", "the reply does not change the program")
    if template.language != "python":
        return  # another language: its own compiler, in the evaluator, judges it
    try:
        ast.parse(code)
    except SyntaxError as exc:
        raise ApplyError(
            "syntax_error", f"the new program does not parse: line {exc.lineno}: {exc.msg}"
        ) from exc


def apply_diff(
    template: Template,
    parent_code: str,
    text: str,
    *,
    similarity: float = 0.9,
    finish_reason: str | None = None,
) -> ApplyResult:
    """Apply the SEARCH/REPLACE edits of a reply to the parent program.

    Each edit, in reply order, is located in the program as edited so far: first
    as an exact run of whole lines (several occurrences are ambiguous unless all
    but one lie outside the evolve regions), then line by line ignoring trailing
    whitespace and blank lines and allowing one common indentation offset (the
    REPLACE lines are re-indented by the same offset), then as the most similar
    window of lines (``difflib`` ratio at least ``similarity`` and clearly better
    than any other, non-overlapping window). The matched text must lie inside one
    evolve region. A reply cut off by the token limit, or ending inside a block,
    still applies the blocks that were complete before the cut.

    Args:
        template: the problem's template.
        parent_code: the parent program, a rendering of ``template``.
        text: the reply.
        similarity: the least ``difflib.SequenceMatcher`` ratio for a fuzzy match.
        finish_reason: the completion's finish reason (``length``: truncated).

    Returns:
        The new program and how each edit was matched.

    Raises:
        ApplyError: ``truncated`` (cut off before any complete edit), ``no_edits``,
            ``search_not_found``,
            ``ambiguous``, ``outside_regions``, ``unchanged`` or ``syntax_error``.
        BlockError: if ``parent_code`` is not a rendering of ``template``.
    """
    cut = detect_truncation(text, finish_reason)
    # a reply that runs on or is cut off still counts when it holds complete edits:
    # the blocks closed before the cut are applied, a block left open is dropped
    edits, _ = _scan_search_replace(text)
    if cut and not edits:
        raise ApplyError("truncated", "the reply was cut off before its first complete edit")
    if not edits:
        raise ApplyError(
            "no_edits",
            "the reply has no SEARCH/REPLACE block (<<<<<<< SEARCH / ======= / >>>>>>> REPLACE)",
        )
    _parent_template(template, parent_code)
    newline = _newline_of(parent_code)
    code = parent_code
    levels: list[str] = []
    scores: list[float] = []
    for number, (search, replace) in enumerate(edits, start=1):
        if not search.strip():
            raise ApplyError("search_not_found", f"edit {number}: the SEARCH block is empty")
        try:
            current = parse_blocks(code)
        except BlockError as exc:
            raise ApplyError(
                "outside_regions", f"edit {number - 1} broke the EVOLVE markers ({exc})"
            ) from exc
        if current.fixed != template.fixed:
            raise ApplyError(
                "outside_regions", f"edit {number - 1} changed text outside the evolve regions"
            )
        try:
            match, change = _locate(
                code, search, replace, regions_spans(current), newline, similarity
            )
        except ApplyError as exc:
            raise ApplyError(exc.reason, f"edit {number}: {exc.message}") from None
        code = code[: change.start] + change.text + code[change.end :]
        levels.append(match.level)
        scores.append(match.score)
    _check_result(template, code, parent_code)
    return ApplyResult(code=code, edits=len(edits), match_levels=levels, similarity=scores)


# --- rewrites -----------------------------------------------------------------------


def _has_marker(body: str) -> bool:
    return any(_MARKER_RE.match(line) for line in body.split("\n"))


def _marker_indent(fixed: str) -> str:
    """Indentation of the START marker line that ends a fixed part."""
    lines = fixed.rstrip("\r\n").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _indent_of(lines[-1])


def _to_newline(text: str, newline: str) -> str:
    return text.replace("\n", newline) if newline != "\n" else text


def _marked_regions(template: Template, body: str) -> list[str]:
    """The regions of a code block that carries EVOLVE markers."""
    try:
        block = parse_blocks(body)
    except BlockError as exc:
        raise ApplyError(
            "wrong_regions", f"the code's EVOLVE markers do not pair up ({exc})"
        ) from exc
    if len(block.regions) != len(template.regions):
        raise ApplyError(
            "wrong_regions",
            f"the program has {len(template.regions)} evolve region(s), the reply's code "
            f"has {len(block.regions)}",
        )
    regions: list[str] = []
    for ours, theirs, region in zip(template.fixed, block.fixed, block.regions, strict=False):
        shift = _shift_between(_marker_indent(theirs), _marker_indent(ours))
        lines = region.split("\n")
        regions.append("\n".join(_shift_line(line, shift) for line in lines))
    return regions


def _context_lines(text: str) -> list[str]:
    """The stripped non-blank, non-marker lines of a fixed part."""
    return [
        line.strip()
        for line in _normalize_newlines(text).split("\n")
        if line.strip() and not _MARKER_RE.match(line)
    ]


def _strip_context(lines: list[str], before: list[str], after: list[str]) -> list[str]:
    """Drop the lines that repeat the fixed code around a one-region template's region.

    Leading lines of ``lines`` that equal (stripped) the last lines of ``before``
    are dropped, and so are trailing ones that equal the first lines of ``after``:
    the model showed the whole program, or the enclosing ``def`` line of a region
    that is a function body.
    """
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    head = 0
    for k in range(min(len(before), len(nonblank)), 0, -1):
        if [lines[i].strip() for i in nonblank[:k]] == before[-k:]:
            head = k
            break
    tail = 0
    for k in range(min(len(after), len(nonblank) - head), 0, -1):
        if [lines[i].strip() for i in nonblank[len(nonblank) - k :]] == after[:k]:
            tail = k
            break
    lo = nonblank[head - 1] + 1 if head else 0
    hi = nonblank[len(nonblank) - tail] if tail else len(lines)
    return lines[lo:hi]


def _bare_region(template: Template, parent: Template, body: str) -> str:
    """A marker-less code block as the new content of a one-region template's region."""
    lines = body.split("\n")[:-1]
    lines = _strip_context(
        lines, _context_lines(template.fixed[0]), _context_lines(template.fixed[1])
    )
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ApplyError("no_code", "the code block only repeats the program's fixed code")
    old = _normalize_newlines(parent.regions[0]).split("\n")
    target = _min_indent(old) if any(line.strip() for line in old) else None
    if target is None:
        target = _marker_indent(template.fixed[0])
    shift = _shift_between(_min_indent(lines), target)
    return "".join(_shift_line(line, shift) + "\n" for line in lines)


def _rewrite_result(
    template: Template, parent: Template, parent_code: str, regions: list[str]
) -> ApplyResult:
    newline = _newline_of(parent_code)
    regions = [_to_newline(region, newline) for region in regions]
    code = template.render(regions)
    _check_result(template, code, parent_code)
    changed = sum(
        1
        for old, new in zip(parent.regions, extract_regions(template, code), strict=False)
        if old != new
    )
    return ApplyResult(code=code, edits=changed)


def apply_rewrite(
    template: Template,
    parent_code: str,
    text: str,
    *,
    finish_reason: str | None = None,
) -> ApplyResult:
    """Make a new program from a reply that rewrites the evolve regions.

    The reply's fenced code blocks are tried, the last first (models often show the
    old code before the new), in this order of preference:

    1. a block with EVOLVE markers (a whole program, or just the marked regions):
       its regions are taken, whatever its fixed parts say; it must have as many
       regions as the template (else ``wrong_regions``); a region is re-indented
       when the block's START marker is indented differently from the template's;
    2. for a one-region template, a block without markers: lines repeating the
       fixed code around the region (the whole program, or the enclosing ``def``
       line) are dropped and the rest, re-indented to the parent region's
       indentation, is the new region.

    Blocks tagged with a language other than Python are skipped, and so is a
    block left open (a reply cut off by the token limit still gives its complete
    blocks). The first block that gives a changed, parseable program wins; the
    fixed parts are always the template's, byte for byte.

    Args:
        template: the problem's template.
        parent_code: the parent program, a rendering of ``template``.
        text: the reply.
        finish_reason: the completion's finish reason (``length``: truncated).

    Returns:
        The new program; ``edits`` counts the regions that changed.

    Raises:
        ApplyError: ``truncated`` (cut off before any complete block), ``no_code``,
            ``wrong_regions``, ``unchanged``,
            ``syntax_error`` (the failure of the most preferred block).
        BlockError: if ``parent_code`` is not a rendering of ``template``.
    """
    cut = detect_truncation(text, finish_reason)
    parent = _parent_template(template, parent_code)
    # only closed fences count: a reply cut off (or running on) after a complete
    # block is used for that block; a fence left open is never taken
    bodies = [
        fence.body
        for fence in _scan_fences(text)
        if fence.closed and fence.lang in PYTHON_LANGUAGES and fence.body.strip()
    ]
    if not bodies and cut:
        raise ApplyError("truncated", "the reply was cut off before its first complete code block")
    if not bodies:
        raise ApplyError("no_code", "the reply has no fenced Python code block")
    errors: list[ApplyError] = []
    for body in reversed(bodies):
        if _has_marker(body):
            try:
                return _rewrite_result(
                    template, parent, parent_code, _marked_regions(template, body)
                )
            except ApplyError as exc:
                errors.append(exc)
    bare = [body for body in reversed(bodies) if not _has_marker(body)]
    if len(template.regions) == 1:
        for body in bare:
            try:
                return _rewrite_result(
                    template, parent, parent_code, [_bare_region(template, parent, body)]
                )
            except ApplyError as exc:
                errors.append(exc)
    elif bare and not errors:
        raise ApplyError(
            "wrong_regions",
            f"the program has {len(template.regions)} evolve regions; write the code "
            f"with its '# {START_MARKER}' / '# {END_MARKER}' marker lines",
        )
    raise errors[0]
