"""Helpers for testing evoforge and code built on it (a fake LLM server, ...)."""

from evoforge.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, search_replace_block

__all__ = ["FakeLLMServer", "RecordedRequest", "Reply", "search_replace_block"]
