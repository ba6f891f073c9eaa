"""Where a SEARCH block sits in the parent program: exactly, whitespace-tolerantly,
or by nearest match, and whether the change stays inside the evolve regions.

Part of :mod:`evoforge.proposers.llm.apply`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from evoforge.problem.blocks import END_MARKER, START_MARKER, BlockError, Template, parse_blocks
from evoforge.proposers.llm.replies import ApplyError

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
_MARKER_RE = re.compile(rf"^[ \t]*#[ \t]*(?:{START_MARKER}|{END_MARKER})\b")
# Python's own line ends only, as in evoforge.problem.blocks
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


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
