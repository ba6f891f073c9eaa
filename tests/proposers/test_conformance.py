"""The shipped proposer conformance suite, run over the project's own proposers."""

from __future__ import annotations

from typing import Any

from evoforge.config import RunConfig
from evoforge.problem.blocks import Template
from evoforge.proposers.base import Proposer
from evoforge.proposers.llm.proposer import LLMProposer
from evoforge.proposers.llm.types import ModelSpec
from evoforge.proposers.mutation.proposer import MutationProposer
from evoforge.testing import FunctionBackend, ProposerConformance, ScriptedProposer
from evoforge.testing.replies import search_replace_block


class TestMutationProposer(ProposerConformance):
    def make_proposer(self, template: Template) -> Proposer:
        return MutationProposer(template)


class TestScriptedProposer(ProposerConformance):
    def make_proposer(self, template: Template) -> Proposer:
        body = template.regions[0]
        return ScriptedProposer(template, [body.replace("2.0 * x", f"{k}.0 * x")
                                           for k in range(3, 9)])


LINE = "    total = 2.0 * x + 3.0 * y"


def _answer(messages: list[dict[str, Any]]) -> str:
    """A diff that applies for some prompts, a reply that does not for others."""
    text = "\n".join(str(m["content"]) for m in messages)
    if LINE in text and len(text) % 3:
        return search_replace_block(LINE, LINE.replace("3.0 * y", "3.5 * y"))
    if len(text) % 2:
        return "```python\nnot a complete answer"
    return search_replace_block("nowhere in the program", "x")


class TestLLMProposer(ProposerConformance):
    session_stats = ("clients",)

    def make_proposer(self, template: Template) -> Proposer:
        config = RunConfig.model_validate({"llm": {"modes": ["diff", "rewrite"]}})
        return LLMProposer(template, config, [ModelSpec(name="fake")],
                           FunctionBackend(_answer))


def test_function_backend_answers_the_llm_proposer_in_process() -> None:
    """The in-process backend gives the proposer real replies: applied and rejected ones."""
    import asyncio
    import random

    from evoforge.testing.conformance_proposer import CONFORMANCE_PROGRAM

    suite = TestLLMProposer()
    template = suite._template()
    backend = FunctionBackend(
        lambda m: search_replace_block(LINE, LINE.replace("3.0 * y", "4.0 * y")))
    config = RunConfig.model_validate({"llm": {"modes": ["diff"],
                                               "mutation_operators": False}})
    proposer = LLMProposer(template, config, [ModelSpec(name="fake")], backend)
    proposal = asyncio.run(proposer.propose_async(suite._parent(), [], random.Random(0)))
    assert proposal is not None and proposal.rejected is None
    assert proposal.code == CONFORMANCE_PROGRAM.replace("3.0 * y", "4.0 * y")
    assert proposal.operator == "llm:diff" and proposal.model == "fake"
    assert backend.calls and "3.0 * y" in str(backend.calls[0]["messages"])
