"""Tests of the OpenAI-compatible LLM client against the fake server over real HTTP."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from evoforge.proposers.llm.client import LLMClient, _retry_after
from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec
from evoforge.testing import FakeLLMServer, Reply

T = TypeVar("T")
MESSAGES = [
    {"role": "system", "content": "You improve programs."},
    {"role": "user", "content": "Make this faster."},
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


class FakeSleep:
    """Records backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spec_for(srv: FakeLLMServer | str, **overrides: Any) -> ModelSpec:
    base = srv if isinstance(srv, str) else srv.base_url
    values: dict[str, Any] = {"name": "fake-model", "api_base": base, "timeout": 5.0}
    values.update(overrides)
    return ModelSpec(**values)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ask(
    specs: Sequence[ModelSpec], times: int = 1, **client_kwargs: Any
) -> tuple[list[Completion | LLMError], LLMClient]:
    """Send ``times`` sequential requests to the first model; errors are returned."""
    client_kwargs.setdefault("sleep", FakeSleep())
    client = LLMClient(list(specs), **client_kwargs)
    results: list[Completion | LLMError] = []
    try:
        for _ in range(times):
            try:
                results.append(await client.complete(specs[0].label, MESSAGES))
            except LLMError as exc:
                results.append(exc)
    finally:
        await client.close()
    return results, client


async def with_client(
    specs: Sequence[ModelSpec],
    body: Callable[[LLMClient], Awaitable[T]],
    **client_kwargs: Any,
) -> T:
    """Run ``body`` with a client that is closed in the same event loop."""
    client = LLMClient(list(specs), **client_kwargs)
    try:
        return await body(client)
    finally:
        await client.close()


def one(specs: Sequence[ModelSpec], **client_kwargs: Any) -> Completion:
    (result,), _ = run(ask(specs, **client_kwargs))
    assert isinstance(result, Completion), result
    return result


def one_error(specs: Sequence[ModelSpec], **client_kwargs: Any) -> LLMError:
    (result,), _ = run(ask(specs, **client_kwargs))
    assert isinstance(result, LLMError), result
    return result


# -- reply kinds ----------------------------------------------------------------------


def test_text_reply_with_tokens_and_cost() -> None:
    with FakeLLMServer([Reply.text("hello", prompt_tokens=1000, completion_tokens=500)]) as srv:
        spec = spec_for(srv, price_in=2.0, price_out=10.0)
        done = one([spec])
    assert done.text == "hello"
    assert done.model == spec.label
    assert done.finish_reason == "stop"
    assert (done.prompt_tokens, done.completion_tokens) == (1000, 500)
    assert done.cost == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    assert done.retries == 0
    assert 0 < done.seconds < 5


def test_cost_is_none_without_prices() -> None:
    with FakeLLMServer([Reply.text("hello")]) as srv:
        done = one([spec_for(srv)])
    assert done.cost is None
    assert done.prompt_tokens > 0 and done.completion_tokens > 0


def test_diff_rewrite_and_garbage_replies_arrive_intact() -> None:
    replies = [
        Reply.diff("x = 1", "x = 2"),
        Reply.rewrite("def f():\n    return 2\n"),
        Reply.garbage(),
    ]
    with FakeLLMServer(replies) as srv:
        results, _ = run(ask([spec_for(srv)], times=3))
    texts = [r.text for r in results if isinstance(r, Completion)]
    assert texts == [r.content for r in replies]
    assert "<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE" in texts[0]
    assert "```python\ndef f():\n    return 2\n```" in texts[1]
    assert "```" not in texts[2]


def test_truncated_reply_reports_length() -> None:
    with FakeLLMServer([Reply.truncated("def f():\n    return 1\n")]) as srv:
        done = one([spec_for(srv)])
    assert done.finish_reason == "length"
    assert done.text.count("```") == 1
    assert done.retries == 0


# -- retries --------------------------------------------------------------------------


def test_429_with_retry_after_then_success() -> None:
    sleep = FakeSleep()
    with FakeLLMServer([Reply.error(429, retry_after=7), Reply.text("ok")]) as srv:
        done = one([spec_for(srv)], sleep=sleep)
    assert done.text == "ok" and done.retries == 1
    assert len(sleep.delays) == 1 and sleep.delays[0] >= 7


def test_retry_after_is_honoured_for_real() -> None:
    with FakeLLMServer([Reply.error(429, retry_after=1), Reply.text("ok")]) as srv:
        start = time.perf_counter()
        done = one([spec_for(srv)], sleep=asyncio.sleep)
        elapsed = time.perf_counter() - start
        first, second = srv.chat_requests
    assert done.text == "ok" and done.retries == 1
    assert second.time - first.time >= 1.0
    assert elapsed >= 1.0


def test_retry_after_is_capped() -> None:
    sleep = FakeSleep()
    with FakeLLMServer([Reply.error(429, retry_after=9999), Reply.text("ok")]) as srv:
        one([spec_for(srv)], sleep=sleep, max_retry_after=42.0)
    assert sleep.delays == [42.0]


def test_500_then_success() -> None:
    with FakeLLMServer([Reply.error(500), Reply.error(503), Reply.text("ok")]) as srv:
        done = one([spec_for(srv)])
    assert done.text == "ok" and done.retries == 2


def test_500_forever_fails_after_max_retries_with_jittered_backoff() -> None:
    sleep = FakeSleep()
    with FakeLLMServer(default=Reply.error(500)) as srv:
        spec = spec_for(srv, max_retries=3)
        results, client = run(ask([spec], sleep=sleep, rng=random.Random(7)))
        assert len(srv.chat_requests) == 4
    (error,) = results
    assert isinstance(error, LLMError)
    message = str(error)
    assert "after 3 retries" in message and "HTTP 500" in message and "\n" not in message
    expected = random.Random(7)
    assert sleep.delays == [expected.uniform(0, 0.5 * 2**i) for i in range(3)]
    stats = client.stats()[spec.label]
    assert stats["requests"] == 1
    assert stats["failures"] == 1
    assert stats["retries"] == 3


def test_backoff_ceiling_is_capped() -> None:
    sleep = FakeSleep()
    with FakeLLMServer(default=Reply.error(503)) as srv:
        run(ask([spec_for(srv, max_retries=6)], sleep=sleep, backoff_base=1.0, backoff_cap=4.0))
    assert len(sleep.delays) == 6
    assert all(0 <= d <= 4.0 for d in sleep.delays)


def test_slow_reply_times_out_is_retried_then_fails() -> None:
    slow = Reply.slow(2.0, Reply.text("too late"))
    with FakeLLMServer(default=slow) as srv:
        start = time.perf_counter()
        error = one_error([spec_for(srv, timeout=0.2, max_retries=1)])
        elapsed = time.perf_counter() - start
        assert len(srv.chat_requests) == 2
    assert "timed out" in str(error) and "after 1 retry" in str(error)
    assert elapsed < 1.5


def test_slow_reply_then_success() -> None:
    with FakeLLMServer([Reply.slow(2.0, Reply.text("late")), Reply.text("ok")]) as srv:
        done = one([spec_for(srv, timeout=0.2)])
    assert done.text == "ok" and done.retries == 1


def test_malformed_body_is_retried() -> None:
    with FakeLLMServer([Reply.malformed(), Reply.text("ok")]) as srv:
        done = one([spec_for(srv)])
    assert done.text == "ok" and done.retries == 1


def test_malformed_body_forever_fails() -> None:
    with FakeLLMServer(default=Reply.malformed()) as srv:
        error = one_error([spec_for(srv, max_retries=2)])
        assert len(srv.chat_requests) == 3
    assert "malformed" in str(error)


@pytest.mark.parametrize("body", ["{}", '{"choices": []}', '"just a string"', "[1, 2]"])
def test_json_without_choices_is_malformed(body: str) -> None:
    with FakeLLMServer([Reply.error(200, body=body), Reply.text("ok")]) as srv:
        done = one([spec_for(srv)])
    assert done.text == "ok" and done.retries == 1


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_4xx_are_not_retried(status: int) -> None:
    sleep = FakeSleep()
    with FakeLLMServer(default=Reply.error(status)) as srv:
        error = one_error([spec_for(srv)], sleep=sleep)
        assert len(srv.chat_requests) == 1
    assert f"HTTP {status}" in str(error)
    assert sleep.delays == []


def test_connection_errors_are_retried_then_fail() -> None:
    sleep = FakeSleep()
    spec = spec_for(f"http://127.0.0.1:{closed_port()}/v1", max_retries=2)
    error = one_error([spec], sleep=sleep)
    assert "connection error" in str(error) and "after 2 retries" in str(error)
    assert len(sleep.delays) == 2


# -- requests -------------------------------------------------------------------------


def test_requests_carry_model_messages_temperature_and_max_tokens() -> None:
    async def go(client: LLMClient) -> None:
        label = client.models[0]
        await client.complete(label, MESSAGES, temperature=0.25, max_tokens=123)
        await client.complete(label, MESSAGES)

    with FakeLLMServer(default=Reply.text("ok")) as srv:
        spec = spec_for(srv, name="coder-7b", temperature=0.9, max_tokens=777)
        run(with_client([spec], go))
        first, second = (r.body for r in srv.chat_requests)
    assert first["model"] == "coder-7b"
    assert first["messages"] == MESSAGES
    assert first["temperature"] == 0.25 and first["max_tokens"] == 123
    assert second["temperature"] == 0.9 and second["max_tokens"] == 777


def test_api_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOFORGE_TEST_KEY", "sk-test-123")
    with FakeLLMServer([Reply.text("ok")]) as srv:
        one([spec_for(srv, api_key_env="EVOFORGE_TEST_KEY")])
        (request,) = srv.chat_requests
    assert request.headers["authorization"] == "Bearer sk-test-123"


def test_missing_key_fails_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOFORGE_TEST_KEY", raising=False)
    with FakeLLMServer([Reply.text("ok")]) as srv:
        error = one_error([spec_for(srv, api_key_env="EVOFORGE_TEST_KEY")])
        assert srv.requests == []
    assert "EVOFORGE_TEST_KEY" in str(error)


def test_stats_accumulate() -> None:
    replies = [Reply.text("a", 10, 5), Reply.error(500), Reply.text("b", 20, 7)]
    with FakeLLMServer(replies) as srv:
        spec = spec_for(srv, price_in=1.0, price_out=1.0)
        _, client = run(ask([spec], times=2))
    assert client.stats() == {
        spec.label: {
            "requests": 2,
            "failures": 0,
            "retries": 1,
            "prompt_tokens": 30,
            "completion_tokens": 12,
            "cost": pytest.approx(42 / 1e6),
        }
    }


def test_unknown_model_and_bad_setups() -> None:
    with FakeLLMServer() as srv:
        client = LLMClient([spec_for(srv)])
        with pytest.raises(LLMError, match="unknown model"):
            run(client.complete("nope", MESSAGES))
        assert client.models == [spec_for(srv).label]
        with pytest.raises(ValueError, match="label"):
            LLMClient([spec_for(srv), spec_for(srv)])
    with pytest.raises(ValueError, match="local"):
        LLMClient([ModelSpec(name="tiny", api_base="local")])
    with pytest.raises(ValueError):
        LLMClient([])


# -- concurrency ----------------------------------------------------------------------


def test_concurrency_limit_per_model() -> None:
    async def go(client: LLMClient) -> list[Completion]:
        label = client.models[0]
        return await asyncio.gather(*(client.complete(label, MESSAGES) for _ in range(6)))

    with FakeLLMServer(default=Reply.slow(0.15, Reply.text("ok"))) as srv:
        done = run(with_client([spec_for(srv, max_concurrency=2)], go))
        assert len(srv.chat_requests) == 6
        assert srv.max_in_flight == 2
    assert [c.text for c in done] == ["ok"] * 6


# -- benching -------------------------------------------------------------------------


def test_model_is_benched_after_consecutive_failures_and_comes_back() -> None:
    clock = FakeClock()
    script = [Reply.error(500)] * 3 + [Reply.text("back")]

    async def go(client: LLMClient) -> None:
        label = client.models[0]
        for _ in range(3):
            with pytest.raises(LLMError, match="HTTP 500"):
                await client.complete(label, MESSAGES)
        assert client.available_models() == []
        with pytest.raises(LLMError, match="benched"):
            await client.complete(label, MESSAGES)
        clock.now += 59
        assert client.available_models() == []
        clock.now += 2
        assert client.available_models() == [label]
        done = await client.complete(label, MESSAGES)
        assert done.text == "back"

    with FakeLLMServer(script) as srv:
        spec = spec_for(srv, max_retries=0)
        run(with_client([spec], go, clock=clock, bench_after=3, bench_seconds=60))
        assert len(srv.chat_requests) == 4  # the benched call never reached the server


def test_success_resets_the_failure_streak_and_other_models_stay() -> None:
    clock = FakeClock()
    script = [Reply.error(500), Reply.error(500), Reply.text("ok"), Reply.error(500)]
    with FakeLLMServer(script) as bad, FakeLLMServer(default=Reply.text("fine")) as good:
        specs = [spec_for(bad, max_retries=0), spec_for(good)]
        results, client = run(ask(specs, times=4, clock=clock, bench_after=3))
    assert [isinstance(r, Completion) for r in results] == [False, False, True, False]
    assert client.available_models() == [specs[0].label, specs[1].label]


def test_request_faults_do_not_bench() -> None:
    with FakeLLMServer(default=Reply.error(400)) as srv:
        spec = spec_for(srv)
        results, client = run(ask([spec], times=4, clock=FakeClock(), bench_after=2))
    assert all(isinstance(r, LLMError) for r in results)
    assert client.available_models() == [spec.label]
    assert client.stats()[spec.label]["failures"] == 4


# -- check ----------------------------------------------------------------------------


async def check(client: LLMClient) -> None:
    await client.check()


def test_check_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOFORGE_TEST_KEY", "sk-x")
    with FakeLLMServer() as srv, FakeLLMServer(models=["other"]) as srv2:
        specs = [spec_for(srv, api_key_env="EVOFORGE_TEST_KEY"), spec_for(srv2, name="other")]
        run(with_client(specs, check))
        (request,) = srv.requests
        assert len(srv2.requests) == 1
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == "Bearer sk-x"


def test_check_accepts_a_missing_models_route() -> None:
    with FakeLLMServer(serve_models=False) as srv:
        run(with_client([spec_for(srv)], check))
        assert len(srv.requests) == 1  # nothing else was tried


def test_check_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOFORGE_MISSING_KEY", raising=False)
    with FakeLLMServer() as srv:
        spec = spec_for(srv, api_key_env="EVOFORGE_MISSING_KEY")
        with pytest.raises(LLMError) as info:
            run(with_client([spec], check))
        assert srv.requests == []
    assert "EVOFORGE_MISSING_KEY" in str(info.value) and spec.label in str(info.value)


def test_check_unreachable_endpoint() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.perf_counter()
    with pytest.raises(LLMError) as info:
        run(with_client([spec_for(url)], check))
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "unreachable" in message and url in message and "fake-model" in message
    assert "\n" not in message


def test_check_names_every_bad_model() -> None:
    with FakeLLMServer() as srv:
        specs = [
            spec_for(srv),
            spec_for(f"http://127.0.0.1:{closed_port()}/v1", name="a"),
            spec_for(f"http://127.0.0.1:{closed_port()}/v1", name="b"),
        ]
        with pytest.raises(LLMError) as info:
            run(with_client(specs, check))
    message = str(info.value)
    assert specs[1].label in message and specs[2].label in message
    assert specs[0].label not in message


def test_check_names_every_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOFORGE_MISSING_A", raising=False)
    monkeypatch.delenv("EVOFORGE_MISSING_B", raising=False)
    specs = [
        spec_for("http://127.0.0.1:9/v1", name="a", api_key_env="EVOFORGE_MISSING_A"),
        spec_for("http://127.0.0.1:9/v1", name="b", api_key_env="EVOFORGE_MISSING_B"),
    ]
    with pytest.raises(LLMError) as info:
        run(with_client(specs, check))
    message = str(info.value)
    assert "EVOFORGE_MISSING_A" in message and "EVOFORGE_MISSING_B" in message


def test_check_accepts_an_odd_models_answer() -> None:
    with FakeLLMServer(models_reply=Reply.malformed()) as srv:
        run(with_client([spec_for(srv)], check))
    with FakeLLMServer(models_reply=Reply.error(500)) as srv:
        run(with_client([spec_for(srv)], check))


def test_check_rejected_key() -> None:
    with (
        FakeLLMServer(models_reply=Reply.error(401)) as srv,
        pytest.raises(LLMError, match="rejected the API key"),
    ):
        run(with_client([spec_for(srv)], check))


def test_check_slow_endpoint_times_out_quickly() -> None:
    slow = Reply.slow(10, Reply.text(""))
    with FakeLLMServer(models_reply=slow) as srv:
        start = time.perf_counter()
        with pytest.raises(LLMError, match="unreachable"):
            run(with_client([spec_for(srv, timeout=0.3)], check))
        assert time.perf_counter() - start < 3


def test_check_timeout_is_at_most_check_timeout() -> None:
    slow = Reply.slow(10, Reply.text(""))
    with FakeLLMServer(models_reply=slow) as srv:
        start = time.perf_counter()
        with pytest.raises(LLMError, match="unreachable"):
            run(with_client([spec_for(srv, timeout=60)], check, check_timeout=0.3))
        assert time.perf_counter() - start < 3


def test_client_survives_a_new_event_loop() -> None:
    with FakeLLMServer(default=Reply.text("ok")) as srv:
        spec = spec_for(srv, max_concurrency=1)
        client = LLMClient([spec])

        async def twice() -> list[Completion]:
            try:
                calls = (client.complete(spec.label, MESSAGES) for _ in range(2))
                return await asyncio.gather(*calls)
            finally:
                await client.close()

        first = run(twice())  # the semaphore was contended, so it is bound to this loop
        second = run(twice())  # a fresh loop: new HTTP client and semaphore
    assert [c.text for c in first + second] == ["ok"] * 4


# -- helpers --------------------------------------------------------------------------


def test_retry_after_parsing() -> None:
    assert _retry_after({"retry-after": "3"}) == 3.0
    assert _retry_after({"retry-after": "1.5"}) == 1.5
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _retry_after({}) is None
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({"retry-after": "-1"}) is None
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    parsed = _retry_after({"retry-after": in_a_minute})
    assert parsed is not None and 55 <= parsed <= 61
