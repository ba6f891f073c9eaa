"""An in-process chat backend backed by a Python function: the LLM proposer without HTTP.

The proposer talks to models through a small interface
(:class:`evoforge.proposers.llm.proposer.ChatBackend`). :class:`FunctionBackend` serves it
from a function of the messages, so proposer logic (prompts, modes, replies that apply
or not, the model bandit) is tested fast and exactly; the HTTP client has its own tests
against :class:`evoforge.testing.FakeLLMServer`::

    backend = FunctionBackend(lambda messages: "```python\\n...\\n```")
    proposer = LLMProposer(template, config, [ModelSpec(name="fake")], backend)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from evoforge.proposers.llm.types import Completion

__all__ = ["FunctionBackend"]

Answer = Callable[[list[dict[str, Any]]], "str | Completion"]


class FunctionBackend:
    """Answers every chat with ``answer(messages)``, for every model label given.

    Args:
        answer: from the chat messages to the reply text (or a whole
            :class:`~evoforge.proposers.llm.types.Completion`, to set tokens, cost or
            ``finish_reason``).
        models: the model labels it serves (``ModelSpec.label``); default ``["fake"]``.
        delay: seconds each reply waits (asynchronously), to look like a model.
    """

    def __init__(self, answer: Answer, models: list[str] | None = None,
                 delay: float = 0.0) -> None:
        self.answer = answer
        self.models = list(models or ["fake"])
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        """Each request: ``model``, ``messages``, ``temperature``, ``max_tokens``."""

    async def complete(self, model_label: str, messages: list[dict[str, Any]], *,
                       temperature: float | None = None, max_tokens: int | None = None,
                       stop: Callable[[str], bool] | None = None) -> Completion:
        """One reply from the function (``stop`` is ignored: the reply comes whole)."""
        self.calls.append({"model": model_label, "messages": messages,
                           "temperature": temperature, "max_tokens": max_tokens})
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.answer(messages)
        if isinstance(reply, Completion):
            return reply
        prompt = sum(len(str(m.get("content", ""))) for m in messages)
        return Completion(text=reply, model=model_label, prompt_tokens=max(1, prompt // 4),
                          completion_tokens=max(1, len(reply) // 4), finish_reason="stop")

    def available_models(self) -> list[str]:
        """Every label it serves."""
        return list(self.models)

    def seconds_until_available(self) -> float:
        """Always 0: its models are never benched."""
        return 0.0

    def stats(self) -> dict[str, dict[str, Any]]:
        """Requests per model."""
        out: dict[str, dict[str, Any]] = {m: {"requests": 0} for m in self.models}
        for call in self.calls:
            out.setdefault(call["model"], {"requests": 0})["requests"] += 1
        return out
