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
from dataclasses import dataclass, field

from evoforge.problem.blocks import (
    END_MARKER,
    START_MARKER,
    BlockError,
    Template,
    extract_regions,
    parse_blocks,
)
from evoforge.proposers.llm.locate import (
    _MARKER_RE,
    _indent_of,
    _locate,
    _min_indent,
    _newline_of,
    _parent_template,
    _shift_between,
    _shift_line,
    regions_spans,
)
from evoforge.proposers.llm.replies import (
    PYTHON_LANGUAGES,
    REASONS,
    ApplyError,
    _normalize_newlines,
    _scan_fences,
    _scan_search_replace,
    detect_truncation,
    extract_code_blocks,
    parse_search_replace,
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

