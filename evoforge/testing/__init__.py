"""Helpers for testing evoforge and code built on it: a fake LLM server, a scripted proposer,
a helper that runs a problem through the real loop."""

from evoforge.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, search_replace_block
from evoforge.testing.runs import run_problem
from evoforge.testing.scripted import ScriptedProposer

__all__ = ["FakeLLMServer", "RecordedRequest", "Reply", "ScriptedProposer",
           "run_problem", "search_replace_block"]
