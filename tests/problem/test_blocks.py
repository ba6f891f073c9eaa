"""EVOLVE-BLOCK parsing, rendering and region extraction (evoforge.problem.blocks)."""

from __future__ import annotations

import pytest

from evoforge.problem.blocks import BlockError, Template, extract_regions, parse_blocks

START = "# EVOLVE-BLOCK-START"
END = "# EVOLVE-BLOCK-END"

SINGLE = f'''\
"""A program with one region."""
import math


{START}
def solve(x):
    return math.sqrt(x)
{END}


if __name__ == "__main__":
    print(solve(4))
'''

MULTI = f"""\
HEADER = 1
{START}
def a():
    return 1
{END}
MIDDLE = 2
    {START}   (second region, indented marker with a note)
def b():
    return 2
#   EVOLVE-BLOCK-END
TAIL = 3
"""

# Markers indented inside a function body, tabs and trailing blanks in the fixed
# text, a CRLF line and trailing text without a final newline.
ODD = (
    "import os  \t\n"
    "\n"
    "\t\n"
    "def outer(values):\r\n"
    "    total = 0   \n"
    f"    {START}\n"
    "    for v in values:\n"
    "        total += v\n"
    f"    {END}  \n"
    "  \t  \n"
    "    return total\n"
    "\n"
    "# trailing text, no final newline   "
)

CRLF = (
    "import sys\r\n"
    f"{START}\r\n"
    "def f():\r\n"
    "    return 1\r\n"
    f"{END}\r\n"
    "print(f())\r\n"
)


def fixed_text(template: Template) -> str:
    return "".join(template.fixed)


# --- parsing ----------------------------------------------------------------------


def test_single_region() -> None:
    t = parse_blocks(SINGLE)
    assert len(t.regions) == 1
    assert len(t.fixed) == 2
    assert t.regions[0] == "def solve(x):\n    return math.sqrt(x)\n"
    assert t.fixed[0].endswith(START + "\n")
    assert t.fixed[1].startswith(END + "\n")
    assert t.source == SINGLE


def test_multiple_regions() -> None:
    t = parse_blocks(MULTI)
    assert t.regions == ("def a():\n    return 1\n", "def b():\n    return 2\n")
    assert len(t.fixed) == 3
    assert t.fixed[0] == f"HEADER = 1\n{START}\n"
    assert t.fixed[1] == (
        f"{END}\nMIDDLE = 2\n    {START}   (second region, indented marker with a note)\n"
    )
    assert t.fixed[2] == "#   EVOLVE-BLOCK-END\nTAIL = 3\n"
    assert t.source == MULTI


def test_empty_region() -> None:
    src = f"x = 1\n{START}\n{END}\ny = 2\n"
    t = parse_blocks(src)
    assert t.regions == ("",)
    assert t.source == src


def test_end_marker_as_last_line_without_newline() -> None:
    src = f"{START}\nx = 1\n{END}"
    t = parse_blocks(src)
    assert t.regions == ("x = 1\n",)
    assert t.fixed[-1] == END
    assert t.render(["y = 2\n"]) == f"{START}\ny = 2\n{END}"


@pytest.mark.parametrize("source", [SINGLE, MULTI, ODD, CRLF], ids=["single", "multi", "odd",
                                                                      "crlf"])
def test_render_original_regions_is_source(source: str) -> None:
    t = parse_blocks(source)
    assert t.render(t.regions) == source
    assert t.render(list(t.regions)) == source
    assert t.source == source


# --- rendering new regions keeps every byte outside them --------------------------


@pytest.mark.parametrize("source", [SINGLE, MULTI, ODD, CRLF], ids=["single", "multi", "odd",
                                                                      "crlf"])
def test_render_new_regions_keeps_fixed_bytes(source: str) -> None:
    t = parse_blocks(source)
    new = [f"# new region {i}\nvalue_{i} = {i}  \t\n" for i in range(len(t.regions))]
    out = t.render(new)
    expected = t.fixed[0]
    for region, fixed in zip(new, t.fixed[1:], strict=True):
        expected += region + fixed
    assert out == expected
    # The output cut at the same places gives back the same fixed parts.
    again = parse_blocks(out)
    assert again.fixed == t.fixed
    assert list(again.regions) == new


def test_render_odd_whitespace_exact_bytes() -> None:
    t = parse_blocks(ODD)
    out = t.render(["    return 42\n"])
    assert out == (
        "import os  \t\n"
        "\n"
        "\t\n"
        "def outer(values):\r\n"
        "    total = 0   \n"
        f"    {START}\n"
        "    return 42\n"
        f"    {END}  \n"
        "  \t  \n"
        "    return total\n"
        "\n"
        "# trailing text, no final newline   "
    )
    assert out.encode().endswith(b"newline   ")


def test_render_crlf_keeps_crlf_outside_regions() -> None:
    t = parse_blocks(CRLF)
    out = t.render(["def f():\r\n    return 2\r\n"])
    assert out == CRLF.replace("return 1", "return 2")
    assert out.count("\r\n") == CRLF.count("\r\n")
    assert "\n" not in out.replace("\r\n", "")


def test_render_adds_missing_final_newline_to_region() -> None:
    t = parse_blocks(SINGLE)
    out = t.render(["def solve(x):\n    return x"])
    assert f"    return x\n{END}\n" in out
    assert out.startswith(t.fixed[0])
    assert out.endswith(t.fixed[1])


def test_render_empty_region() -> None:
    t = parse_blocks(SINGLE)
    assert t.render([""]) == t.fixed[0] + t.fixed[1]


def test_render_wrong_number_of_regions() -> None:
    t = parse_blocks(MULTI)
    with pytest.raises(BlockError, match="expected 2 evolve regions, got 1"):
        t.render(["x = 1\n"])
    with pytest.raises(BlockError, match="got 3"):
        t.render(["a\n", "b\n", "c\n"])


# --- malformed markers ------------------------------------------------------------


def test_no_block() -> None:
    with pytest.raises(BlockError, match="no evolve region"):
        parse_blocks("def f():\n    return 1\n")


def test_empty_source() -> None:
    with pytest.raises(BlockError, match="no evolve region"):
        parse_blocks("")


def test_start_without_end() -> None:
    with pytest.raises(BlockError, match="never closed"):
        parse_blocks(f"x = 1\n{START}\ndef f():\n    pass\n")


def test_start_without_end_after_a_good_block() -> None:
    with pytest.raises(BlockError, match="never closed"):
        parse_blocks(f"{START}\na = 1\n{END}\n{START}\nb = 2\n")


def test_end_without_start() -> None:
    with pytest.raises(BlockError, match=r"line 2: EVOLVE-BLOCK-END without a matching START"):
        parse_blocks(f"x = 1\n{END}\n")


def test_second_end_without_start() -> None:
    with pytest.raises(BlockError, match=r"line 4: .*without a matching START"):
        parse_blocks(f"{START}\nx = 1\n{END}\n{END}\n")


def test_nested_start() -> None:
    src = f"{START}\nx = 1\n    {START}\ny = 2\n{END}\n{END}\n"
    with pytest.raises(BlockError, match=r"line 3: EVOLVE-BLOCK-START inside another block"):
        parse_blocks(src)


def test_block_error_is_value_error() -> None:
    assert issubclass(BlockError, ValueError)


def test_marker_words_in_code_are_not_markers() -> None:
    # Only comment lines are markers; a string mentioning the word is ordinary code.
    src = f'MSG = "EVOLVE-BLOCK-START"\n{START}\nx = 1\n{END}\n'
    t = parse_blocks(src)
    assert t.regions == ("x = 1\n",)
    assert t.fixed[0] == f'MSG = "EVOLVE-BLOCK-START"\n{START}\n'


# --- extract_regions --------------------------------------------------------------


@pytest.mark.parametrize("source", [SINGLE, MULTI, ODD, CRLF], ids=["single", "multi", "odd",
                                                                      "crlf"])
def test_extract_regions_round_trip(source: str) -> None:
    t = parse_blocks(source)
    assert extract_regions(t, source) == list(t.regions)
    new = [f"z{i} = {i} * 2\n\n# done\n" for i in range(len(t.regions))]
    assert extract_regions(t, t.render(new)) == new


def test_extract_regions_raises_when_fixed_text_changed() -> None:
    t = parse_blocks(SINGLE)
    program = t.render(["def solve(x):\n    return x\n"])
    changed = program.replace("import math", "import cmath")
    with pytest.raises(BlockError, match="changed text outside"):
        extract_regions(t, changed)


def test_extract_regions_raises_on_whitespace_change_outside() -> None:
    t = parse_blocks(ODD)
    program = t.render(["    pass\n"])
    with pytest.raises(BlockError, match="changed text outside"):
        extract_regions(t, program.replace("def outer(values):\r\n", "def outer(values):\n"))
    with pytest.raises(BlockError, match="changed text outside"):
        extract_regions(t, program + "\n")


def test_extract_regions_raises_when_marker_removed() -> None:
    t = parse_blocks(MULTI)
    program = t.render(["a = 1\n", "b = 2\n"])
    with pytest.raises(BlockError):
        extract_regions(t, program.replace(END + "\n", "", 1))


def test_extract_regions_raises_when_region_added() -> None:
    t = parse_blocks(SINGLE)
    program = t.source + f"{START}\nextra = 1\n{END}\n"
    with pytest.raises(BlockError, match="changed text outside"):
        extract_regions(t, program)


# --- known bugs -------------------------------------------------------------------


def test_form_feed_on_start_line_round_trips() -> None:
    src = f"x = 1\n{START}\x0c\ny = 2\n{END}\n"
    assert parse_blocks(src).source == src


def test_cr_only_line_ends_round_trip() -> None:
    src = f"x = 1\r{START}\ry = 2\r{END}\rz = 3\r"
    assert parse_blocks(src).source == src
