"""Helpers for testing evoforge and code built on it: a fake LLM server, an in-process chat
backend, a scripted proposer, a helper that runs a problem through the real loop, and
conformance suites for the plug points (``StorageConformance`` in
:mod:`evoforge.testing.conformance_storage` and ``ExecutorConformance`` in
:mod:`evoforge.testing.conformance_executor` need pytest, so they are imported from there)."""

from evoforge.testing.backend import FunctionBackend
from evoforge.testing.conformance_proposer import ProposerConformance
from evoforge.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, search_replace_block
from evoforge.testing.runs import VALUE_EVALUATOR, run_problem, write_problem
from evoforge.testing.scripted import ScriptedProposer

__all__ = ["VALUE_EVALUATOR", "FakeLLMServer", "FunctionBackend", "ProposerConformance",
           "RecordedRequest", "Reply", "ScriptedProposer", "run_problem", "search_replace_block",
           "write_problem"]
