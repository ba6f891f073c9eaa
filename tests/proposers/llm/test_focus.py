"""Tests of the focused modes for small models: one function, one return expression."""

from __future__ import annotations

import pytest

from evoforge.problem.blocks import parse_blocks
from evoforge.proposers.llm.apply import ApplyError
from evoforge.proposers.llm.focus import (
    answer_prefix,
    apply_expression,
    apply_function,
    expression_done,
    function_done,
    region_functions,
)

START = "# EVOLVE-BLOCK-START"
END = "# EVOLVE-BLOCK-END"

PROGRAM = f'''"""Score bins."""
import numpy as np


def helper(x):
    return x


{START}
LIMIT = 3


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """First fit."""
    return -np.arange(len(bins), dtype=float)


@staticmethod
def other(a,
          b):
    if a:
        return a
    c = a + b
    return c
{END}


def after():
    return 1
'''


def test_region_functions_only_inside_regions() -> None:
    targets = region_functions(PROGRAM)
    assert [t.name for t in targets] == ["priority", "other"]
    priority, other = targets
    assert priority.returns and other.returns
    assert priority.header == "def priority(item: float, bins: np.ndarray) -> np.ndarray:\n"
    assert other.header.startswith("@staticmethod\ndef other(a,\n")
    assert other.source.startswith("@staticmethod\n")
    assert region_functions("def broken(:\n") == []


def test_answer_prefix() -> None:
    priority = region_functions(PROGRAM)[0]
    assert answer_prefix(priority, "function") == "```python\n" + priority.header + "    "
    assert answer_prefix(priority, "expression").endswith(":\n    return ")
    assert answer_prefix(priority, "expression", "+").endswith(
        ":\n    return (-np.arange(len(bins), dtype=float)) + ")
    template = parse_blocks(PROGRAM)
    reply = answer_prefix(priority, "expression", "*") + "bins\n"
    result = apply_expression(template, PROGRAM, reply, priority)
    assert "    return -np.arange(len(bins), dtype=float) * bins\n" in result.code


def test_apply_function_takes_first_complete_block_and_ignores_the_rest() -> None:
    template = parse_blocks(PROGRAM)
    priority = region_functions(PROGRAM)[0]
    reply = ("```python\ndef priority(item, bins):\n    return -(bins - item)\n```\n"
             "This is better because\n```python\nprint(priority(1, bins))\n```\nand more"
             "```python\ndef priority(")  # ran on and was cut off
    result = apply_function(template, PROGRAM, reply, priority, finish_reason="length")
    assert "def priority(item, bins):\n    return -(bins - item)\n" in result.code
    # everything else is kept byte for byte
    assert result.code.replace("def priority(item, bins):\n    return -(bins - item)\n",
                               "") == PROGRAM.replace(priority.source, "")
    # extra code in the block (imports, other functions) is not taken
    reply = ("```python\nimport os\ndef priority(item, bins):\n    return bins\n"
             "def helper(x):\n    return 2\n```")
    result = apply_function(template, PROGRAM, reply, priority)
    assert "import os" not in result.code and "return 2" not in result.code


def test_apply_function_reasons() -> None:
    template = parse_blocks(PROGRAM)
    priority = region_functions(PROGRAM)[0]
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, "```python\ndef priority(item, bins):\n    ret",
                       priority, finish_reason="length")
    assert info.value.reason == "truncated"
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, "use best fit", priority)
    assert info.value.reason == "no_code"
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, "```python\ndef priority(:\n```", priority)
    assert info.value.reason == "syntax_error"
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, "```python\ndef best(a):\n    return a\n```",
                       priority)
    assert info.value.reason == "no_code"
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, "```python\n" + priority.source + "```", priority)
    assert info.value.reason == "unchanged"


def test_apply_function_reindents_a_nested_target() -> None:
    program = f"class K:\n    {START}\n    def f(self):\n        return 1\n    {END}\n"
    template = parse_blocks(program)
    # a method is not a top-level function: nothing to focus on
    assert region_functions(program) == []
    flat = f"{START}\ndef f():\n    return 1\n{END}\n"
    target = region_functions(flat)[0]
    result = apply_function(parse_blocks(flat), flat,
                            "```python\n  def f():\n      return 2\n```", target)
    assert "def f():\n    return 2\n" in result.code
    assert template.fixed  # the class program parses as a template


def test_apply_expression() -> None:
    template = parse_blocks(PROGRAM)
    priority, other = region_functions(PROGRAM)
    prefix = answer_prefix(priority, "expression")
    result = apply_expression(template, PROGRAM, prefix + "-(bins - item)  # tight\nmore",
                              priority)
    assert "    return -(bins - item)\n" in result.code
    assert '"""First fit."""' in result.code
    # a multi-line expression is joined; only the final return changes
    result = apply_expression(template, PROGRAM, "return (a *\n   b)\n", other)
    assert "    if a:\n        return a\n    c = a + b\n    return a * b\n" in result.code
    with pytest.raises(ApplyError) as info:
        apply_expression(template, PROGRAM, prefix + "np.where(bins >", priority)
    assert info.value.reason == "no_code"
    with pytest.raises(ApplyError) as info:
        apply_expression(template, PROGRAM, prefix + "-np.arange(len(bins), dtype=float)\n",
                         priority)
    assert info.value.reason == "unchanged"


def test_stop_tests() -> None:
    done = function_done("priority")
    assert not done("```python\ndef priority(item, bins):\n    x = 1\n")
    assert not done("```python\ndef priority(item, bins):\n    return 1")
    assert done("```python\ndef priority(item, bins):\n    return 1\n")
    assert done("```python\ndef priority(item, bins):\n    x = 1\n```")
    assert not done("```python\ndef other():\n    return 1\n```")
    assert not expression_done("```python\ndef f():\n    return (1 +")
    assert not expression_done("```python\ndef f():\n    return 1 + 2")
    assert expression_done("```python\ndef f():\n    return 1 + 2\n")


def test_function_cut_off_after_its_return_is_complete() -> None:
    template = parse_blocks(PROGRAM)
    priority = region_functions(PROGRAM)[0]
    prefix = answer_prefix(priority, "function")
    reply = prefix + "gap = bins - item\n    return -gap\n    # and then the model ramb"
    result = apply_function(template, PROGRAM, reply, priority, finish_reason="length")
    assert ("def priority(item: float, bins: np.ndarray) -> np.ndarray:\n"
            "    gap = bins - item\n    return -gap\n") in result.code
    assert "ramb" not in result.code
    assert function_done("priority")(reply)
    # a return only inside an if is not the end of the function
    cut = prefix + "if item:\n        return -bins\n    x = np.where(bins"
    assert not function_done("priority")(cut)
    with pytest.raises(ApplyError) as info:
        apply_function(template, PROGRAM, cut, priority, finish_reason="length")
    assert info.value.reason == "truncated"
    # a return line not yet finished is not complete either
    assert not function_done("priority")(prefix + "return -(bins -")


def test_small_prompt_shows_one_function_and_opens_the_answer() -> None:
    from evoforge.candidate import Candidate, Status, normalized_hash
    from evoforge.proposers.llm.prompts import PromptBuilder

    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial",
                       code=PROGRAM, code_hash=normalized_hash(PROGRAM), status=Status.OK,
                       score=-5.0, fitness=-5.0,
                       metrics={"combined_score": -5.0, "other": 1.0},
                       artifacts={"profile": "profile of one evaluation: priority() hot"})
    builder = PromptBuilder(None, None, "combined_score", True)
    priority = region_functions(PROGRAM)[0]
    prefix = answer_prefix(priority, "expression")
    system, user, assistant = builder.small("expression", parent, priority.source,
                                            prefix=prefix)
    assert system["role"] == "system" and assistant == {"role": "assistant",
                                                        "content": prefix}
    text = user["content"]
    assert "Score bins." in text  # the program's docstring
    assert priority.source.strip() in text and "def other" not in text
    assert "combined_score=-5" in text and "other=1" not in text
    assert "(item, bins)" in text
    assert "like: return -np.arange(len(bins), dtype=float)" in text
    assert "priority() hot" in text  # the parent's profile
    messages = builder.small("function", parent, priority.source)
    assert [m["role"] for m in messages] == ["system", "user"]


def test_remote_model_in_function_and_expression_modes() -> None:
    """A remote model asked for one function / one expression over real HTTP."""
    import asyncio
    import random

    from evoforge.candidate import Candidate, Status, normalized_hash
    from evoforge.config import LLMConfig
    from evoforge.problem import load_problem
    from evoforge.proposers.llm.backend import Backend
    from evoforge.proposers.llm.proposer import LLMProposer
    from evoforge.proposers.llm.types import ModelSpec
    from evoforge.testing import FakeLLMServer, Reply

    problem = load_problem("bin_packing")
    code = problem.initial_program
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=code,
                       code_hash=normalized_hash(code), status=Status.OK, score=-5.5,
                       fitness=-5.5, metrics={"combined_score": -5.5})
    replies = [Reply.text("Sure:\n```python\ndef priority(item, bins):\n    return -bins\n```\n"
                          "This is best fit."),
               Reply.text("```python\nreturn -(bins - item)\n```")]
    with FakeLLMServer(replies) as server:
        spec = ModelSpec(name="fake-model", api_base=server.base_url, max_retries=0)
        backend = Backend([spec])
        for mode, expected in (("function", "def priority(item, bins):\n    return -bins\n"),
                               ("expression", "    return -(bins - item)\n")):
            llm = LLMConfig.model_validate({"modes": [mode], "mutation_operators": False})
            config = problem.config.model_copy(update={"llm": llm})
            proposer = LLMProposer(problem.template, config, [spec], backend, problem.path)
            proposal = asyncio.run(proposer.propose_async(parent, [], random.Random(0)))
            assert proposal is not None and proposal.rejected is None, proposal
            assert expected in proposal.code
        requests = [r.body for r in server.chat_requests]
    # a remote model gets the short prompt without a prefill, and a token limit fitted to it
    assert all(r["messages"][-1]["role"] == "user" for r in requests)
    assert [r["max_tokens"] for r in requests][1] == 64
    assert requests[0]["max_tokens"] < 400
