"""Reading an LLM reply: fenced code blocks, SEARCH/REPLACE blocks, truncation.

Part of turning a reply into a program (:mod:`evoforge.proposers.llm.apply`): every
failure is an :class:`ApplyError` whose ``reason`` names its kind.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

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
_FENCE_OPEN_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FENCE_CLOSE_RE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")
_SEARCH_RE = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b.*$")
_DIVIDER_RE = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE_RE = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE\b.*$")


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


