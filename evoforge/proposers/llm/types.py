"""Records shared by the LLM clients (remote and local) and the LLM proposer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelSpec(BaseModel):
    """One model the LLM proposer may call.

    Attributes:
        name: the model name the endpoint knows (``gpt-4.1-mini``, ``qwen2.5-coder``).
        api_base: OpenAI-compatible base URL (``http://127.0.0.1:8000/v1``); None for
            the provider's default; ``local`` for the built-in local model.
        api_key_env: name of the environment variable holding the key (None: no key).
        weight: prior weight when choosing among models.
        temperature: sampling temperature.
        max_tokens: completion limit.
        timeout: seconds per request.
        price_in: US dollars per million prompt tokens (None: unknown).
        price_out: US dollars per million completion tokens (None: unknown).
        max_concurrency: requests in flight to this model at once.
        max_retries: retries of a failed request (429, 5xx, timeouts, connection errors).
        prompt_style: ``full`` or ``small`` prompts (None: small for the local model,
            else ``llm.prompt_style`` or full).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    api_base: str | None = None
    api_key_env: str | None = None
    weight: float = Field(1.0, ge=0)
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(4096, ge=1)
    timeout: float = Field(120.0, gt=0)
    price_in: float | None = Field(None, ge=0)
    price_out: float | None = Field(None, ge=0)
    max_concurrency: int = Field(4, ge=1)
    max_retries: int = Field(4, ge=0)
    prompt_style: Literal["full", "small"] | None = None

    @property
    def label(self) -> str:
        """A short unique name for tables: ``name@api_base``."""
        return f"{self.name}@{self.api_base}" if self.api_base else self.name

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for a request, or None when prices are unknown."""
        if self.price_in is None or self.price_out is None:
            return None
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1e6


@dataclass
class Completion:
    """A model's reply.

    Attributes:
        text: the reply text.
        model: the label of the model that answered.
        prompt_tokens: tokens in the prompt (as reported, else estimated).
        completion_tokens: tokens in the reply.
        cost: dollars, or None when prices are unknown.
        finish_reason: ``stop``, ``length`` (truncated) or what the endpoint said.
        retries: how many retries the request needed.
        seconds: wall-clock seconds, retries included.
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    finish_reason: str | None = None
    retries: int = 0
    seconds: float = 0.0


class LLMError(RuntimeError):
    """A request that failed after its retries, or a model that cannot be used."""
