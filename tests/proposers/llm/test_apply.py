"""Turning LLM replies into programs (evoforge.proposers.llm.apply)."""

from __future__ import annotations

import ast

import pytest

from evoforge.problem.blocks import BlockError, Template, extract_regions, parse_blocks
from evoforge.proposers.llm.apply import (
    REASONS,
    ApplyError,
    ApplyResult,
    apply_diff,
    apply_rewrite,
    detect_truncation,
    extract_code_blocks,
    parse_search_replace,
    regions_spans,
)

START = "# EVOLVE-BLOCK-START"
END = "# EVOLVE-BLOCK-END"

# One top-level region.
PROGRAM = f'''\
"""Sum of squares."""
import math


{START}
def solve(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
{END}


if __name__ == "__main__":
    print(solve(10), math.pi)
'''

# One region that is a function body (indented).
BODY = f"""\
import math


def solve(n):
    {START}
    total = 0
    for i in range(n):
        total += i * i
    return total
    {END}


def helper():
    return 0
"""

# Two regions; the fixed part between them repeats a line of the first region.
TWO = f"""\
import math

{START}
def a(x):
    y = x + 1
    return y
{END}

y = 3

{START}
def b(x):
    return x * 2
{END}
"""


def sr(search: str, replace: str, fence: bool = True) -> str:
    """A reply with one SEARCH/REPLACE block."""
    block = f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    return f"Here is the change:\n```python\n{block}```\n" if fence else block


def fence(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}```\n"


def check_fixed(program: str, code: str) -> list[str]:
    """Assert the fixed parts are kept byte for byte and the code parses."""
    regions = extract_regions(parse_blocks(program), code)
    ast.parse(code)
    return regions


def reason_of(excinfo: pytest.ExceptionInfo[ApplyError]) -> str:
    return excinfo.value.reason


# --- parsing ------------------------------------------------------------------------


def test_extract_code_blocks_variants() -> None:
    text = (
        "intro\r\n```python\r\na = 1\r\n```\r\n"
        "```py\nb = 2\n```\n"
        "```\nc = 3\n```\n"
        "~~~\nd = 4\n~~~\n"
        "````python\ne = '```'\n````\n"
        "```bash\nls\n```\n"
    )
    blocks = extract_code_blocks(text)
    assert blocks == ["a = 1\n", "b = 2\n", "c = 3\n", "d = 4\n", "e = '```'\n", "ls\n"]
    assert extract_code_blocks(text, languages={"python", ""}) == [
        "a = 1\n",
        "c = 3\n",
        "d = 4\n",
        "e = '```'\n",
    ]


def test_extract_code_blocks_skips_unclosed() -> None:
    assert extract_code_blocks("```python\na = 1\n```\n```python\nb = ") == ["a = 1\n"]
    assert extract_code_blocks("no code here") == []


def test_parse_search_replace() -> None:
    text = (
        "```python\r\n<<<<<<< SEARCH\r\na = 1\r\n=======\r\na = 2\r\n>>>>>>> REPLACE\r\n```\r\n"
        "<<<<< SEARCH\nb = 1\n=====\n>>>>>>>>> REPLACE\n"
    )
    assert parse_search_replace(text) == [("a = 1\n", "a = 2\n"), ("b = 1\n", "")]
    assert parse_search_replace("nothing") == []


def test_parse_search_replace_truncated() -> None:
    with pytest.raises(ApplyError) as excinfo:
        parse_search_replace("<<<<<<< SEARCH\na = 1\n=======\na = ")
    assert reason_of(excinfo) == "truncated"


def test_parse_search_replace_malformed() -> None:
    with pytest.raises(ApplyError) as excinfo:
        parse_search_replace("<<<<<<< SEARCH\na = 1\n>>>>>>> REPLACE\n")
    assert reason_of(excinfo) == "no_edits"


def test_detect_truncation() -> None:
    assert detect_truncation("fine", finish_reason="length")
    assert not detect_truncation("fine", finish_reason="stop")
    assert detect_truncation("```python\ndef f():\n    return")
    assert detect_truncation("<<<<<<< SEARCH\na = 1\n")
    assert not detect_truncation(sr("a = 1\n", "a = 2\n"))
    assert not detect_truncation(fence("a = 1\n"))


def test_regions_spans() -> None:
    template = parse_blocks(TWO)
    spans = regions_spans(template)
    assert [TWO[lo:hi] for lo, hi in spans] == list(template.regions)


def test_apply_error_reason_checked() -> None:
    err = ApplyError("ambiguous", "two places")
    assert isinstance(err, ValueError)
    assert err.reason == "ambiguous"
    assert "two places" in str(err)
    assert "ambiguous" in REASONS
    with pytest.raises(ValueError):
        ApplyError("whatever", "x")


# --- apply_diff ---------------------------------------------------------------------


def test_diff_exact() -> None:
    template = parse_blocks(PROGRAM)
    result = apply_diff(
        template, PROGRAM, sr("        total += i * i\n", "        total += i**3\n")
    )
    assert isinstance(result, ApplyResult)
    assert result.edits == 1
    assert result.match_levels == ["exact"]
    assert result.similarity == [1.0]
    assert "total += i**3" in result.code
    assert "i * i" not in result.code
    check_fixed(PROGRAM, result.code)


def test_diff_crlf_reply() -> None:
    template = parse_blocks(PROGRAM)
    reply = sr("    total = 0\n", "    total = 1\n").replace("\n", "\r\n")
    result = apply_diff(template, PROGRAM, reply)
    assert result.match_levels == ["exact"]
    assert "    total = 1\n" in result.code
    assert "\r" not in result.code
    check_fixed(PROGRAM, result.code)


def test_diff_crlf_parent_keeps_its_line_ends() -> None:
    program = PROGRAM.replace("\n", "\r\n")
    template = parse_blocks(program)
    result = apply_diff(template, program, sr("    total = 0\n", "    total = 1\n    t = 2\n"))
    assert "    total = 1\r\n    t = 2\r\n" in result.code
    assert "\n" not in result.code.replace("\r\n", "")
    check_fixed(program, result.code)


def test_diff_dedented_search_is_reindented() -> None:
    template = parse_blocks(BODY)
    search = "for i in range(n):\n    total += i * i\n"
    replace = "for i in range(1, n):\n    if i % 2:\n        total += i * i\n"
    result = apply_diff(template, BODY, sr(search, replace))
    assert result.match_levels == ["whitespace"]
    assert (
        "    for i in range(1, n):\n        if i % 2:\n            total += i * i\n" in result.code
    )
    check_fixed(BODY, result.code)
    namespace: dict[str, object] = {}
    exec(result.code, namespace)
    assert namespace["solve"](5) == 1 + 9  # type: ignore[operator]


def test_diff_overindented_search() -> None:
    template = parse_blocks(PROGRAM)
    search = "        def solve(n):\n            total = 0\n"
    replace = "        def solve(n):\n            total = 100\n"
    result = apply_diff(template, PROGRAM, sr(search, replace))
    assert result.match_levels == ["whitespace"]
    assert "\ndef solve(n):\n    total = 100\n" in result.code
    check_fixed(PROGRAM, result.code)


def test_diff_trailing_spaces_and_blank_lines() -> None:
    template = parse_blocks(PROGRAM)
    search = "    total = 0   \n\n    for i in range(n):  \n"
    replace = "    total = 5\n    for i in range(n):\n"
    result = apply_diff(template, PROGRAM, sr(search, replace))
    assert result.match_levels == ["whitespace"]
    assert "    total = 5\n    for i in range(n):\n        total += i * i\n" in result.code
    check_fixed(PROGRAM, result.code)


def test_diff_fuzzy_typo_above_threshold() -> None:
    template = parse_blocks(PROGRAM)
    search = "    for i in range(n):\n        totl += i * i\n    return total\n"
    replace = "    for i in range(n):\n        total += i * i * i\n    return total\n"
    result = apply_diff(template, PROGRAM, sr(search, replace))
    assert result.match_levels == ["fuzzy"]
    assert 0.9 <= result.similarity[0] < 1.0
    assert "total += i * i * i" in result.code
    check_fixed(PROGRAM, result.code)


def test_diff_fuzzy_typo_and_indentation() -> None:
    template = parse_blocks(BODY)
    search = "for i in range(n):\n    totl += i * i\nreturn total\n"
    replace = "for i in range(n):\n    total -= i\nreturn total\n"
    result = apply_diff(template, BODY, sr(search, replace))
    assert result.match_levels == ["fuzzy"]
    assert "    for i in range(n):\n        total -= i\n    return total\n" in result.code
    check_fixed(BODY, result.code)


def test_diff_fuzzy_below_threshold() -> None:
    template = parse_blocks(PROGRAM)
    search = "    for i in range(n):\n        totl += i * i\n    return total\n"
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr(search, "    return 0\n"), similarity=0.995)
    assert reason_of(excinfo) == "search_not_found"


def test_diff_search_not_found() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr("    while queue:\n        node = queue.pop()\n", "x\n"))
    assert reason_of(excinfo) == "search_not_found"
    assert "edit 1" in excinfo.value.message


def test_diff_ambiguous() -> None:
    program = f"{START}\nx = 0\nx += 1\nx += 1\n{END}\n"
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(parse_blocks(program), program, sr("x += 1\n", "x += 2\n"))
    assert reason_of(excinfo) == "ambiguous"


def test_diff_ambiguous_whitespace_level() -> None:
    program = (
        f"{START}\ndef f():\n    x = 1\n    return x\ndef g():\n    x = 1\n    return x\n{END}\n"
    )
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(parse_blocks(program), program, sr("x = 1\nreturn x\n", "x = 2\nreturn x\n"))
    assert reason_of(excinfo) == "ambiguous"


def test_diff_occurrence_outside_regions_is_ignored() -> None:
    # a line present in a fixed part and in a region: the region's one is edited
    program = f"import math\n{START}\nimport math\nz = 1\n{END}\n"
    result = apply_diff(parse_blocks(program), program, sr("import math\n", "import cmath\n"))
    assert result.code == f"import math\n{START}\nimport cmath\nz = 1\n{END}\n"


def test_diff_outside_regions() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr("import math\n", "import numpy\n"))
    assert reason_of(excinfo) == "outside_regions"
    # the marker line itself
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr(f"{END}\n", "\n"))
    assert reason_of(excinfo) == "outside_regions"
    # a span that crosses a marker
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr(f"    return total\n{END}\n", "    return 0\n"))
    assert reason_of(excinfo) == "outside_regions"


def test_diff_unchanged_context_outside_regions_is_allowed() -> None:
    template = parse_blocks(PROGRAM)
    search = f"{START}\ndef solve(n):\n    total = 0\n"
    replace = f"{START}  \ndef solve(n):\n    total = 1\n"
    result = apply_diff(template, PROGRAM, sr(search, replace))
    assert check_fixed(PROGRAM, result.code)[0].startswith("def solve(n):\n    total = 1\n")
    # an insertion right after the START marker or right before the END marker is inside
    result = apply_diff(template, PROGRAM, sr(f"{START}\n", f"{START}\nLIMIT = 10\n"))
    assert check_fixed(PROGRAM, result.code)[0].startswith("LIMIT = 10\ndef solve")
    result = apply_diff(template, PROGRAM, sr(f"{END}\n", f"LIMIT = 10\n{END}\n"))
    assert check_fixed(PROGRAM, result.code)[0].endswith("    return total\nLIMIT = 10\n")
    # ... but one right before the START marker is not
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr(f"{START}\n", f"LIMIT = 10\n{START}\n"))
    assert reason_of(excinfo) == "outside_regions"


def test_diff_fuzzy_ambiguous() -> None:
    program = (
        f"{START}\n"
        "def f(values):\n    total = 0\n    for v in values:\n        total += v * v\n"
        "    return total\n\n\n"
        "def g(values):\n    total = 0\n    for v in values:\n        total += v * v\n"
        "    return total\n"
        f"{END}\n"
    )
    search = "    total = 0\n    for v in values:\n        totl += v * v\n"
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(parse_blocks(program), program, sr(search, "    total = 1\n"))
    assert reason_of(excinfo) == "ambiguous"


def test_diff_fuzzy_outside_regions() -> None:
    program = (
        "def helper(values):\n    total = 0\n    for v in values:\n        total += v * v\n"
        f"    return total\n{START}\nX = 1\n{END}\n"
    )
    search = "    total = 0\n    for v in values:\n        totl += v * v\n"
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(parse_blocks(program), program, sr(search, "    total = 1\n"))
    assert reason_of(excinfo) == "outside_regions"


def test_diff_cannot_insert_a_marker() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr("    return total\n", f"    return total\n{END}\n"))
    assert reason_of(excinfo) == "outside_regions"


def test_diff_multiple_edits_in_order() -> None:
    template = parse_blocks(TWO)
    reply = (
        sr("    y = x + 1\n", "    y = x + 2\n")
        + "and then\n"
        + sr("    y = x + 2\n    return y\n", "    y = x + 2\n    return y * y\n")
        + sr("    return x * 2\n", "    return x * 3\n", fence=False)
    )
    result = apply_diff(template, TWO, reply)
    assert result.edits == 3
    assert result.match_levels == ["exact", "exact", "exact"]
    regions = check_fixed(TWO, result.code)
    assert regions == [
        "def a(x):\n    y = x + 2\n    return y * y\n",
        "def b(x):\n    return x * 3\n",
    ]


def test_diff_truncated() -> None:
    template = parse_blocks(PROGRAM)
    full = sr("    total = 0\n", "    total = 1\n")
    cut = full[: full.index("=======") + 12]
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, cut)
    assert reason_of(excinfo) == "truncated"
    # cut off after a complete edit: the edit applies (the rest is dropped)
    result = apply_diff(template, PROGRAM, full, finish_reason="length")
    assert "total = 1" in result.code
    check_fixed(PROGRAM, result.code)
    second = sr("    return total\n", "    return total + 1\n")
    result = apply_diff(template, PROGRAM, full + "\n" + second[: second.index("=======")])
    assert "total = 1" in result.code and "total + 1" not in result.code
    # a complete block inside a fence that was never closed
    result = apply_diff(template, PROGRAM, "```\n" + full)
    assert "total = 1" in result.code


def test_diff_syntax_error() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr("    total = 0\n", "    total = (0\n"))
    assert reason_of(excinfo) == "syntax_error"


def test_diff_unchanged() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, sr("    total = 0\n", "    total = 0\n"))
    assert reason_of(excinfo) == "unchanged"


def test_diff_no_edits() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_diff(template, PROGRAM, fence("x = 1\n"))
    assert reason_of(excinfo) == "no_edits"


def test_diff_rejects_foreign_parent() -> None:
    with pytest.raises(BlockError):
        apply_diff(parse_blocks(PROGRAM), BODY, sr("    total = 0\n", "    total = 1\n"))


def test_diff_deletion() -> None:
    template = parse_blocks(BODY)
    result = apply_diff(template, BODY, sr("    total = 0\n", ""))
    assert "total = 0" not in result.code
    check_fixed(BODY, result.code)


# --- apply_rewrite ------------------------------------------------------------------


def test_rewrite_with_markers() -> None:
    template = parse_blocks(PROGRAM)
    reply = (
        "The new version:\n"
        + fence(f"{START}\ndef solve(n):\n    return (n - 1) * n * (2 * n - 1) // 6\n{END}\n")
        + "Done."
    )
    result = apply_rewrite(template, PROGRAM, reply)
    regions = check_fixed(PROGRAM, result.code)
    assert regions == ["def solve(n):\n    return (n - 1) * n * (2 * n - 1) // 6\n"]
    assert result.edits == 1
    assert result.match_levels == []


def test_rewrite_whole_program_with_changed_fixed_parts() -> None:
    template = parse_blocks(PROGRAM)
    new = PROGRAM.replace("import math", "import math, os").replace(
        "total += i * i", "total += i ** 2"
    )
    result = apply_rewrite(template, PROGRAM, fence(new))
    regions = check_fixed(PROGRAM, result.code)
    assert "import math, os" not in result.code
    assert "total += i ** 2" in regions[0]


def test_rewrite_prefers_last_parseable_block() -> None:
    template = parse_blocks(PROGRAM)
    new = PROGRAM.replace("total = 0", "total = 0  # new")
    broken = PROGRAM.replace("total = 0", "total = (")
    reply = "Old:\n" + fence(PROGRAM) + "New:\n" + fence(new) + "Oops:\n" + fence(broken)
    result = apply_rewrite(template, PROGRAM, reply)
    assert "total = 0  # new" in result.code
    check_fixed(PROGRAM, result.code)


def test_rewrite_markers_preferred_over_later_snippet() -> None:
    template = parse_blocks(PROGRAM)
    new = PROGRAM.replace("total = 0", "total = 1")
    reply = fence(new) + "Usage:\n" + fence("print(solve(3))\n")
    result = apply_rewrite(template, PROGRAM, reply)
    assert "total = 1" in result.code


def test_rewrite_whole_program_without_markers() -> None:
    template = parse_blocks(PROGRAM)
    stripped = "".join(
        line for line in PROGRAM.splitlines(keepends=True) if "EVOLVE-BLOCK" not in line
    ).replace("total += i * i", "total += i * i * 2")
    result = apply_rewrite(template, PROGRAM, fence(stripped))
    regions = check_fixed(PROGRAM, result.code)
    assert regions[0].startswith("def solve(n):")
    assert "total += i * i * 2" in regions[0]
    assert result.code.count("import math") == 1
    assert result.code.count("__main__") == 1


def test_rewrite_bare_block_one_region() -> None:
    template = parse_blocks(PROGRAM)
    reply = fence("def solve(n):\n    return sum(i * i for i in range(n))\n", lang="")
    result = apply_rewrite(template, PROGRAM, reply)
    regions = check_fixed(PROGRAM, result.code)
    assert regions == ["def solve(n):\n    return sum(i * i for i in range(n))\n"]


def test_rewrite_bare_block_indented_region() -> None:
    template = parse_blocks(BODY)
    reply = fence("return sum(i * i for i in range(n))\n")
    result = apply_rewrite(template, BODY, reply)
    regions = check_fixed(BODY, result.code)
    assert regions == ["    return sum(i * i for i in range(n))\n"]
    namespace: dict[str, object] = {}
    exec(result.code, namespace)
    assert namespace["solve"](4) == 14  # type: ignore[operator]


def test_rewrite_whole_program_without_markers_indented_region() -> None:
    template = parse_blocks(BODY)
    stripped = "".join(
        line for line in BODY.splitlines(keepends=True) if "EVOLVE-BLOCK" not in line
    ).replace("total += i * i", "total += 3 * i")
    result = apply_rewrite(template, BODY, fence(stripped))
    regions = check_fixed(BODY, result.code)
    assert regions == [
        "    total = 0\n    for i in range(n):\n        total += 3 * i\n    return total\n"
    ]


def test_rewrite_bare_block_with_enclosing_def() -> None:
    template = parse_blocks(BODY)
    reply = fence("def solve(n):\n    return n * n\n")
    result = apply_rewrite(template, BODY, reply)
    assert check_fixed(BODY, result.code) == ["    return n * n\n"]


def test_rewrite_overindented_markers_block() -> None:
    template = parse_blocks(BODY)
    reply = fence(f"{START}\nreturn n + 1\n{END}\n")
    result = apply_rewrite(template, BODY, reply)
    assert check_fixed(BODY, result.code) == ["    return n + 1\n"]


def test_rewrite_two_regions() -> None:
    template = parse_blocks(TWO)
    new = TWO.replace("x + 1", "x + 10").replace("x * 2", "x * 20")
    result = apply_rewrite(template, TWO, fence(new))
    assert result.edits == 2
    assert check_fixed(TWO, result.code) == [
        "def a(x):\n    y = x + 10\n    return y\n",
        "def b(x):\n    return x * 20\n",
    ]


def test_rewrite_wrong_regions() -> None:
    template = parse_blocks(TWO)
    one = f"{START}\ndef a(x):\n    return x\n{END}\n"
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, TWO, fence(one))
    assert reason_of(excinfo) == "wrong_regions"
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, TWO, fence("def a(x):\n    return x\n"))
    assert reason_of(excinfo) == "wrong_regions"
    single = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(single, PROGRAM, fence(TWO))
    assert reason_of(excinfo) == "wrong_regions"


def test_rewrite_no_code() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, PROGRAM, "I would use a closed formula.")
    assert reason_of(excinfo) == "no_code"
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, PROGRAM, fence("pip install numpy\n", lang="bash"))
    assert reason_of(excinfo) == "no_code"


def test_rewrite_truncated() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, PROGRAM, "```python\ndef solve(n):\n    return (n")
    assert reason_of(excinfo) == "truncated"
    # a complete block, then the reply ran on until the token limit cut it
    reply = fence("def solve(n):\n    return 1\n") + "Explanation: this is faster bec"
    result = apply_rewrite(template, PROGRAM, reply, finish_reason="length")
    assert "return 1" in result.code
    check_fixed(PROGRAM, result.code)
    # ... or cut inside a second block: the first, complete one is used
    reply = fence("def solve(n):\n    return 2\n") + "Or:\n```python\ndef solve(n):\n    ret"
    result = apply_rewrite(template, PROGRAM, reply, finish_reason="length")
    assert "return 2" in result.code


def test_rewrite_syntax_error_and_unchanged() -> None:
    template = parse_blocks(PROGRAM)
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, PROGRAM, fence("def solve(n):\n    return (n\n"))
    assert reason_of(excinfo) == "syntax_error"
    with pytest.raises(ApplyError) as excinfo:
        apply_rewrite(template, PROGRAM, fence(PROGRAM))
    assert reason_of(excinfo) == "unchanged"


def test_rewrite_crlf_parent_and_reply() -> None:
    program = PROGRAM.replace("\n", "\r\n")
    template = parse_blocks(program)
    reply = fence("def solve(n):\n    return n\n").replace("\n", "\r\n")
    result = apply_rewrite(template, program, reply)
    assert check_fixed(program, result.code) == ["def solve(n):\r\n    return n\r\n"]


@pytest.mark.parametrize(
    "reply",
    [
        fence(f"import os\n{START}\ndef solve(n):\n    return 2\n{END}\nprint('changed tail')\n"),
        fence("def solve(n):\n    return 3\n"),
        fence(PROGRAM.replace("return total", "return -total").replace("import math", "")),
    ],
)
def test_rewrite_never_changes_fixed_parts(reply: str) -> None:
    template: Template = parse_blocks(PROGRAM)
    result = apply_rewrite(template, PROGRAM, reply)
    assert extract_regions(template, result.code)
    assert parse_blocks(result.code).fixed == template.fixed
