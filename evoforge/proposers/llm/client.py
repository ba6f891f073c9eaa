"""An OpenAI-compatible chat client with retries, concurrency limits and benching.

One ``AsyncOpenAI`` client per model (the SDK's own retries are off; this module
retries with exponential backoff and full jitter, honouring ``Retry-After``).
A model that keeps failing is benched for a while so the proposer can use the
others (or wait for it, when it is the only one; a model benched ``down_after`` times in
a row is not waited for); ``check()`` fails fast at start on a missing key or a dead endpoint.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["LLMClient"]

_NO_KEY = "none"  # sent when a model needs no key; the SDK insists on one
_REQUEST_FAULTS = frozenset({400, 413, 422})  # the request's fault, not the model's
_REASON_CHARS = 300

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass
class _ModelState:
    spec: ModelSpec
    semaphore: asyncio.Semaphore
    client: AsyncOpenAI | None = None
    loop: asyncio.AbstractEventLoop | None = None  # the loop the client and semaphore serve
    consecutive_failures: int = 0
    benched_until: float | None = None
    benches: int = 0  # benches in a row, without a successful call between them
    stats: dict[str, Any] = field(default_factory=dict)


class _Retryable(Exception):
    """A failed attempt worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failed attempt not worth retrying."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class LLMClient:
    """Calls OpenAI-compatible chat endpoints for a set of models.

    Statistics per model (``stats()``): ``requests`` counts ``complete`` calls that
    were sent (retries not included), ``failures`` those that failed for good,
    ``retries`` the retries, ``prompt_tokens``/``completion_tokens`` the tokens of
    successful calls and ``cost`` their dollars (None when prices are unknown).
    """

    down_after = 3
    """Benches in a row (no success between) that make a model down: not waited for."""

    def __init__(
        self,
        models: Sequence[ModelSpec],
        *,
        bench_after: int = 3,
        bench_seconds: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 300.0,
        check_timeout: float = 10.0,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Set up the models; nothing is contacted until a call.

        Args:
            models: the models, with distinct labels; ``api_base="local"`` (the
                built-in local model) is not served by this client.
            bench_after: consecutive failed calls (after their retries) that bench
                a model.
            bench_seconds: how long a benched model rests.
            backoff_base: seconds of the first retry's backoff ceiling; it doubles
                with each retry.
            backoff_cap: the most seconds of any backoff ceiling.
            max_retry_after: the most seconds a ``Retry-After`` header may impose.
            check_timeout: the most seconds ``check()`` waits for an endpoint.
            rng: the jitter source (default: a fresh ``random.Random()``).
            sleep: the async sleep for backoffs (default: ``asyncio.sleep``).
            clock: the clock for benching, in seconds (default: ``time.monotonic``).

        Raises:
            ValueError: no models, duplicate labels, a local model or bad settings.
        """
        if not models:
            raise ValueError("LLMClient needs at least one model")
        if bench_after < 1 or bench_seconds < 0 or backoff_base < 0 or backoff_cap < 0:
            raise ValueError("bench_after must be >= 1 and the durations >= 0")
        self._states: dict[str, _ModelState] = {}
        for spec in models:
            if spec.api_base == "local":
                raise ValueError(
                    f"model {spec.label} is the built-in local model; LLMClient only "
                    "serves OpenAI-compatible endpoints"
                )
            if spec.label in self._states:
                raise ValueError(f"two models share the label {spec.label}")
            self._states[spec.label] = _ModelState(
                spec=spec,
                semaphore=asyncio.Semaphore(spec.max_concurrency),
                stats={
                    "requests": 0,
                    "failures": 0,
                    "retries": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cost": None if spec.cost(0, 0) is None else 0.0,
                },
            )
        self.bench_after = bench_after
        self.bench_seconds = bench_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.check_timeout = check_timeout
        self._rng = rng if rng is not None else random.Random()
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._clock: Clock = clock if clock is not None else time.monotonic

    # -- public ---------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """All model labels, in the order given."""
        return list(self._states)

    def spec(self, model_label: str) -> ModelSpec:
        """The spec of a model.

        Args:
            model_label: the model's label (``ModelSpec.label``).

        Returns:
            The spec.

        Raises:
            LLMError: no such model.
        """
        return self._state(model_label).spec

    def available_models(self) -> list[str]:
        """The labels of the models not benched now, in the order given.

        Returns:
            The labels.
        """
        return [label for label, state in self._states.items() if not self._benched(state)]

    def seconds_until_available(self) -> float:
        """Seconds until a model can be asked again: 0 when one is not benched now.

        Returns:
            The rest of the shortest bench when every model is benched, else 0.
        """
        if self.available_models():
            return 0.0
        # a model benched again and again is down: not worth waiting for
        ends = [s.benched_until for s in self._states.values()
                if s.benched_until is not None and s.benches < self.down_after]
        return max(min(ends) - self._clock(), 0.0) if ends else 0.0

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per model label.

        Returns:
            ``{label: {"requests", "failures", "retries", "prompt_tokens",
            "completion_tokens", "cost"}}`` (a copy; cost None when prices are
            unknown).
        """
        return {label: dict(state.stats) for label, state in self._states.items()}

    async def complete(
        self,
        model_label: str,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """Ask a model for a chat completion, retrying transient failures.

        429 (after at least its ``Retry-After``), 5xx, timeouts, connection errors
        and malformed bodies are retried up to ``spec.max_retries`` times with
        exponential backoff and full jitter; other 4xx fail at once.

        Args:
            model_label: the model's label (``ModelSpec.label``).
            messages: OpenAI-style chat messages (``{"role": ..., "content": ...}``).
            temperature: sampling temperature (None: the spec's).
            max_tokens: completion limit (None: the spec's).

        Returns:
            The completion, with tokens, cost, retries and seconds.

        Raises:
            LLMError: unknown or benched model, missing key, or the request failed
                after its retries.
        """
        state = self._state(model_label)
        spec = state.spec
        until = state.benched_until if self._benched(state) else None
        if until is not None:
            left = max(0.0, until - self._clock())
            raise LLMError(
                f"model {model_label} is benched for another {left:.0f} s after "
                f"{self.bench_after} consecutive failures"
            )
        client = self._client(state)
        started = time.perf_counter()
        state.stats["requests"] += 1
        retries = 0
        while True:
            try:
                async with state.semaphore:
                    completion = await self._attempt(
                        client,
                        spec,
                        messages,
                        spec.temperature if temperature is None else temperature,
                        spec.max_tokens if max_tokens is None else max_tokens,
                    )
            except _Fatal as exc:
                self._failed(state, counts_against_model=exc.status not in _REQUEST_FAULTS)
                raise LLMError(f"model {model_label} failed: {exc.reason}") from exc
            except _Retryable as exc:
                if retries >= spec.max_retries:
                    self._failed(state, counts_against_model=True)
                    raise LLMError(
                        f"model {model_label} failed after {retries} "
                        f"{'retry' if retries == 1 else 'retries'}: {exc.reason}"
                    ) from exc
                delay = self._backoff(retries, exc.retry_after)
                retries += 1
                state.stats["retries"] += 1
                await self._sleep(delay)
                continue
            break
        state.consecutive_failures = 0
        state.benches = 0
        completion.model = model_label
        completion.retries = retries
        completion.seconds = time.perf_counter() - started
        completion.cost = spec.cost(completion.prompt_tokens, completion.completion_tokens)
        state.stats["prompt_tokens"] += completion.prompt_tokens
        state.stats["completion_tokens"] += completion.completion_tokens
        if completion.cost is not None:
            state.stats["cost"] = (state.stats["cost"] or 0.0) + completion.cost
        return completion

    async def check(self) -> None:
        """Fail fast: every model's key variable is set and its endpoint answers.

        Each endpoint gets ``GET /models`` with a short timeout; a 404 is fine (some
        servers lack the route), a connection failure or timeout is not, and
        neither is a 401/403 (a rejected key).

        Raises:
            LLMError: naming every model that cannot be used, and why.
        """
        problems: list[str] = []
        reachable: list[_ModelState] = []
        for state in self._states.values():
            try:
                self._client(state)  # raises on a missing key variable
            except LLMError as exc:
                problems.append(str(exc))
            else:
                reachable.append(state)
        results = await asyncio.gather(
            *(self._check_one(state) for state in reachable), return_exceptions=True
        )
        for result in results:
            if isinstance(result, LLMError):
                problems.append(str(result))
            elif isinstance(result, BaseException):
                raise result
        if problems:
            raise LLMError("; ".join(problems))

    async def close(self) -> None:
        """Close the HTTP clients (the models can still be used afterwards).

        Clients opened under another event loop are dropped without closing.
        """
        loop = asyncio.get_running_loop()
        for state in self._states.values():
            client, state.client = state.client, None
            if client is not None and state.loop is loop:
                await client.close()
            # a client of another (finished) loop cannot be closed from here; drop it

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- internals ------------------------------------------------------------------

    def _state(self, model_label: str) -> _ModelState:
        try:
            return self._states[model_label]
        except KeyError:
            known = ", ".join(self._states)
            raise LLMError(f"unknown model {model_label} (known: {known})") from None

    def _benched(self, state: _ModelState) -> bool:
        if state.benched_until is None:
            return False
        if self._clock() >= state.benched_until:
            state.benched_until = None
            return False
        return True

    def _failed(self, state: _ModelState, *, counts_against_model: bool) -> None:
        state.stats["failures"] += 1
        if not counts_against_model:
            return
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.bench_after:
            state.consecutive_failures = 0
            state.benches += 1
            state.benched_until = self._clock() + self.bench_seconds

    def _backoff(self, retries_so_far: int, retry_after: float | None) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0**retries_so_far)
        delay = self._rng.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def _client(self, state: _ModelState) -> AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if state.loop is not loop:
            # A new event loop (another asyncio.run): the old client's connections and
            # the semaphore belong to the old loop, so start afresh.
            state.client = None
            state.semaphore = asyncio.Semaphore(state.spec.max_concurrency)
            state.loop = loop
        if state.client is not None:
            return state.client
        spec = state.spec
        if spec.api_key_env is None:
            key = _NO_KEY
        else:
            key = os.environ.get(spec.api_key_env, "")
            if not key:
                raise LLMError(
                    f"model {spec.label}: the environment variable {spec.api_key_env} "
                    "(its API key) is not set"
                )
        from openai import AsyncOpenAI

        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": spec.timeout}
        if spec.api_base is not None:
            kwargs["base_url"] = spec.api_base
        state.client = AsyncOpenAI(**kwargs)
        return state.client

    async def _check_one(self, state: _ModelState) -> None:
        import openai

        spec = state.spec
        client = self._client(state)
        url = spec.api_base or str(client.base_url)
        try:
            await client.models.list(timeout=min(spec.timeout, self.check_timeout))
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise LLMError(
                    f"model {spec.label} at {url} rejected the API key "
                    f"(HTTP {exc.status_code}): {_one_line(exc.message)}"
                ) from exc
            # 404 and other answers: the endpoint is there; requests will tell.
        except openai.APIConnectionError as exc:
            raise LLMError(f"model {spec.label} at {url} is unreachable: {_describe(exc)}") from exc
        except (openai.OpenAIError, ValueError):
            pass  # it answered, oddly (a body that is no model list); requests will tell

    async def _attempt(
        self,
        client: AsyncOpenAI,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        temperature: float,
        max_tokens: int,
    ) -> Completion:
        import openai
        from openai.types.chat import ChatCompletion

        try:
            # the plain JSON body through the client's post(): the same request,
            # retries and errors as chat.completions.create, without its per-call
            # transform of the typed parameters (about 9 ms of CPU a request, issue 11)
            response = await client.post(
                "/chat/completions",
                body={"model": spec.name, "messages": messages,
                      "temperature": temperature, "max_tokens": max_tokens},
                cast_to=ChatCompletion,
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            reason = f"HTTP {status}: {_one_line(exc.message)}"
            if status == 429:
                raise _Retryable(reason, _retry_after(exc.response.headers)) from exc
            if status >= 500:
                raise _Retryable(reason) from exc
            raise _Fatal(reason, status) from exc
        except openai.APITimeoutError as exc:
            raise _Retryable(f"timed out after {spec.timeout:g} s") from exc
        except openai.APIConnectionError as exc:
            raise _Retryable(f"connection error: {_describe(exc)}") from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise _Retryable(f"malformed response: {_one_line(str(exc))}") from exc
        except openai.OpenAIError as exc:
            raise _Fatal(f"{type(exc).__name__}: {_one_line(str(exc))}") from exc
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            finish_reason = choice.finish_reason
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise _Retryable(f"malformed response: no choices ({type(exc).__name__})") from exc
        if not isinstance(text, str):
            raise _Retryable("malformed response: the message content is not text")
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if not isinstance(prompt_tokens, int):
            prompt_tokens = _estimate_tokens("".join(str(m.get("content") or "") for m in messages))
        if not isinstance(completion_tokens, int):
            completion_tokens = _estimate_tokens(text)
        return Completion(
            text=text,
            model=spec.label,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
        )


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _REASON_CHARS else line[: _REASON_CHARS - 3] + "..."


def _describe(exc: BaseException) -> str:
    """The exception's message plus its root cause (the SDK's are terse)."""
    parts = [_one_line(str(exc)) or type(exc).__name__]
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 5:
        text = _one_line(str(cause))
        if text and text not in parts:
            parts.append(text)
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return _one_line(" - ".join(parts))


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            seconds = float(value) / 1000.0
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
