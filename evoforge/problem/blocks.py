"""EVOLVE-BLOCK parsing and splicing.

A program is split into alternating fixed and evolvable parts. Only the evolvable
parts (the text between ``# EVOLVE-BLOCK-START`` and ``# EVOLVE-BLOCK-END``
marker lines) may change; the fixed parts, marker lines included, are kept byte
for byte when a new version of the regions is spliced back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

START_MARKER = "EVOLVE-BLOCK-START"
END_MARKER = "EVOLVE-BLOCK-END"

# a marker line is a comment in the program's language: # (Python, R, shell),
# // or /* (Rust, C, JavaScript, Go), -- (SQL, Lua, Haskell), ; (Lisp), % (MATLAB)
_MARKER_RE = re.compile(
    r"^[ \t]*(?:#|//+|/\*+|--|;+|%+|<!--)[ \t]*(EVOLVE-BLOCK-START|EVOLVE-BLOCK-END)\b.*$")
# Python's own line ends only (str.splitlines would also split at \f, \x1c, \u2028, ...)
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


class BlockError(ValueError):
    """The EVOLVE-BLOCK markers of a program are missing or unbalanced."""


@dataclass(frozen=True)
class Template:
    """A program cut into fixed parts around its evolvable regions.

    ``fixed`` always has one more element than ``regions``: the program is
    ``fixed[0] + regions[0] + fixed[1] + ... + regions[-1] + fixed[-1]``.
    Each region is the exact text between the end of a START marker line and
    the beginning of the matching END marker line. ``language`` is the program's
    language (only Python programs are parsed and mutated model-free).
    """

    fixed: tuple[str, ...]
    regions: tuple[str, ...]
    language: str = "python"

    def render(self, regions: list[str] | tuple[str, ...]) -> str:
        """Return the program with ``regions`` spliced in place of the original ones."""
        if len(regions) != len(self.regions):
            raise BlockError(
                f"expected {len(self.regions)} evolve regions, got {len(regions)}"
            )
        parts: list[str] = []
        for fixed, region in zip(self.fixed, regions, strict=False):
            parts.append(fixed)
            if region and not region.endswith(("\n", "\r")):
                region += "\n"
            parts.append(region)
        parts.append(self.fixed[-1])
        return "".join(parts)

    @property
    def source(self) -> str:
        """The original program text."""
        return self.render(self.regions)


def whole_file(source: str) -> Template:
    """A template whose one region is all of ``source`` (a program without markers)."""
    return Template(fixed=("", ""), regions=(source,))


def parse_blocks(source: str) -> Template:
    """Split ``source`` at its EVOLVE-BLOCK markers.

    Raises:
        BlockError: if there is no region, or START/END markers do not pair up.
    """
    lines = _LINE_RE.findall(source)
    fixed: list[str] = []
    regions: list[str] = []
    buf: list[str] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        match = _MARKER_RE.match(line.rstrip("\r\n"))
        if match is None:
            buf.append(line)
            continue
        kind = match.group(1)
        if kind == START_MARKER:
            if inside:
                raise BlockError(f"line {number}: {START_MARKER} inside another block")
            buf.append(line)
            fixed.append("".join(buf))
            buf = []
            inside = True
        else:
            if not inside:
                raise BlockError(f"line {number}: {END_MARKER} without a matching START")
            regions.append("".join(buf))
            buf = [line]
            inside = False
    if inside:
        raise BlockError(f"{START_MARKER} is never closed by {END_MARKER}")
    if not regions:
        raise BlockError(
            f"no evolve region: mark the code that may change with '# {START_MARKER}' "
            f"and '# {END_MARKER}' lines"
        )
    fixed.append("".join(buf))
    return Template(fixed=tuple(fixed), regions=tuple(regions))


def extract_regions(template: Template, program: str) -> list[str]:
    """Recover the regions of ``program``, a rendering of ``template``.

    Raises:
        BlockError: if ``program`` changed text outside the regions.
    """
    if template.fixed == ("", ""):  # a whole-file template: the program is its region
        return [program]
    other = parse_blocks(program)
    if other.fixed != template.fixed:
        raise BlockError("the program changed text outside its evolve regions")
    return list(other.regions)
