"""One chat backend over remote OpenAI-compatible models and the built-in local model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evoforge.proposers.llm.client import LLMClient
from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec


class Backend:
    """Routes each model label to the remote client or to a local model.

    Args:
        specs: the models; ``api_base="local"`` ones run in this process.
    """

    def __init__(self, specs: list[ModelSpec]) -> None:
        remote = [s for s in specs if s.api_base != "local"]
        self.client = LLMClient(remote) if remote else None
        self.local: dict[str, Any] = {}
        for spec in specs:
            if spec.api_base == "local":
                if spec.name != "smollm2":
                    raise LLMError(f"unknown local model {spec.name!r}; the built-in one is "
                                   "local:smollm2")
                from evoforge.proposers.llm.local import LocalModel

                self.local[spec.label] = LocalModel(spec)

    async def check(self) -> None:
        """Fail fast: keys present, endpoints reachable, local models loadable."""
        if self.client is not None:
            await self.client.check()
        for model in self.local.values():
            await model.check()

    async def complete(self, model_label: str, messages: list[dict[str, Any]], *,
                       temperature: float | None = None,
                       max_tokens: int | None = None,
                       stop: Callable[[str], bool] | None = None) -> Completion:
        """One chat completion from ``model_label``.

        ``stop`` (the local model only) ends a reply early once it returns True for
        the text so far; remote replies arrive whole and are cut by the caller.
        """
        local = self.local.get(model_label)
        if local is not None:
            result: Completion = await local.complete(messages, temperature=temperature,
                                                      max_tokens=max_tokens, stop=stop)
            return result
        if self.client is None:
            raise LLMError(f"no model {model_label!r}")
        return await self.client.complete(model_label, messages, temperature=temperature,
                                          max_tokens=max_tokens)

    def available_models(self) -> list[str]:
        """Labels of the models that are not benched."""
        remote = self.client.available_models() if self.client is not None else []
        return remote + list(self.local)

    def seconds_until_available(self) -> float:
        """Seconds until a model can be asked again (0 when one can now)."""
        if self.local or self.client is None:
            return 0.0
        return self.client.seconds_until_available()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-model request statistics (requests, failures, retries, tokens, cost)."""
        out = dict(self.client.stats()) if self.client is not None else {}
        for label, model in self.local.items():
            out[label] = model.stats()
        return out

    async def close(self) -> None:
        """Close connections."""
        if self.client is not None:
            await self.client.close()
