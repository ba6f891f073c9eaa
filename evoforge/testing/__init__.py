"""Helpers for testing evoforge and code built on it: a fake LLM server, a scripted proposer."""

from evoforge.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, search_replace_block
from evoforge.testing.scripted import ScriptedProposer

__all__ = ["FakeLLMServer", "RecordedRequest", "Reply", "ScriptedProposer",
           "search_replace_block"]
