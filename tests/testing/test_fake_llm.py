"""Tests of the fake OpenAI-compatible server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest

from evoforge.testing import FakeLLMServer, Reply, search_replace_block


def _post(
    srv: FakeLLMServer, body: Any, conn: http.client.HTTPConnection | None = None
) -> tuple[int, dict[str, str], bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def _get(srv: FakeLLMServer, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


CHAT = {"model": "m1", "messages": [{"role": "user", "content": "make it faster please"}]}


def test_text_reply_has_the_openai_shape() -> None:
    with FakeLLMServer([Reply.text("hello", prompt_tokens=11, completion_tokens=3)]) as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        status, headers, data = _post(srv, CHAT)
    assert status == 200
    assert headers["content-type"] == "application/json"
    reply = json.loads(data)
    assert reply["object"] == "chat.completion"
    assert reply["id"].startswith("chatcmpl-")
    assert isinstance(reply["created"], int)
    assert reply["model"] == "m1"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def test_usage_is_estimated_when_not_given() -> None:
    with FakeLLMServer([Reply.text("x" * 40)]) as srv:
        _, _, data = _post(srv, CHAT)
    usage = json.loads(data)["usage"]
    assert usage["completion_tokens"] == 10
    assert usage["prompt_tokens"] >= 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_reply_kinds_render_as_documented() -> None:
    diff = Reply.diff("a = 1\n", "a = 2\n")
    assert search_replace_block("a = 1", "a = 2") in diff.content
    assert "<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n" in diff.content
    assert not diff.content.startswith("<<<<<<<")  # prose around it

    rewrite = Reply.rewrite("def f():\n    return 1")
    assert "```python\ndef f():\n    return 1\n```" in rewrite.content

    garbage = Reply.garbage()
    assert "```" not in garbage.content and "SEARCH" not in garbage.content
    assert garbage.status == 200

    bare = Reply.truncated("def f():\n    return 1\n")
    assert bare.finish_reason == "length"
    assert "```python\n" in bare.content and bare.content.count("```") == 1
    fenced = Reply.truncated("Here:\n```python\nline1\nline2\nline3\nline4\n```\nDone.")
    assert fenced.content.startswith("Here:\n```python\nline1")
    assert "line4" not in fenced.content and fenced.content.count("```") == 1

    slow = Reply.slow(0.5, Reply.text("hi"))
    assert slow.delay == 0.5 and slow.content == "hi"


def test_truncated_reply_is_sent_with_length() -> None:
    with FakeLLMServer([Reply.truncated("def f():\n    return 1\n")]) as srv:
        _, _, data = _post(srv, CHAT)
    choice = json.loads(data)["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"].count("```") == 1


def test_error_reply_with_retry_after() -> None:
    with FakeLLMServer([Reply.error(429, retry_after=2), Reply.error(503, body="down")]) as srv:
        status, headers, data = _post(srv, CHAT)
        assert status == 429
        assert headers["retry-after"] == "2"
        assert "429" in json.loads(data)["error"]["message"]
        status, headers, data = _post(srv, CHAT)
        assert status == 503 and data == b"down" and "retry-after" not in headers


def test_malformed_reply_is_not_json() -> None:
    with FakeLLMServer([Reply.malformed()]) as srv:
        status, _, data = _post(srv, CHAT)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(data)


def test_exhausted_script_answers_500_or_the_default() -> None:
    with FakeLLMServer([Reply.text("one")]) as srv:
        assert _post(srv, CHAT)[0] == 200
        status, _, data = _post(srv, CHAT)
        assert status == 500
        assert "exhausted after 1 replies" in json.loads(data)["error"]["message"]
        assert srv.remaining == 0
    with FakeLLMServer([Reply.text("one")], default=Reply.text("again")) as srv:
        contents = [
            json.loads(_post(srv, CHAT)[2])["choices"][0]["message"]["content"] for _ in range(3)
        ]
    assert contents == ["one", "again", "again"]


def test_script_function_sees_the_request() -> None:
    def answer(request: Any) -> Reply:
        return Reply.text(f"you said: {request['messages'][-1]['content']}")

    with FakeLLMServer(answer) as srv:
        _, _, data = _post(srv, CHAT)
    assert json.loads(data)["choices"][0]["message"]["content"] == (
        "you said: make it faster please"
    )


def test_script_function_that_raises_gives_500() -> None:
    def answer(request: Any) -> Reply:
        raise KeyError("nope")

    with FakeLLMServer(answer) as srv:
        status, _, data = _post(srv, CHAT)
    assert status == 500 and "KeyError" in json.loads(data)["error"]["message"]


def test_requests_are_recorded() -> None:
    with FakeLLMServer([Reply.text("a")]) as srv:
        _post(srv, CHAT)
        _get(srv, "/v1/models")
        recorded = srv.requests
    assert [(r.method, r.path) for r in recorded] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    assert recorded[0].body == CHAT
    assert recorded[0].headers["content-type"] == "application/json"
    assert len(srv.chat_requests) == 1


def test_models_endpoint() -> None:
    with FakeLLMServer(models=["a", "b"]) as srv:
        status, data = _get(srv, "/v1/models")
        assert status == 200
        listing = json.loads(data)
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == ["a", "b"]
        assert _get(srv, "/v1/nothing")[0] == 404
    with FakeLLMServer() as srv:
        assert [m["id"] for m in json.loads(_get(srv, "/v1/models")[1])["data"]] == ["fake-model"]
    with FakeLLMServer(serve_models=False) as srv:
        assert _get(srv, "/v1/models")[0] == 404


def test_kept_alive_requests_are_fast() -> None:
    """Guards against the ~40 ms Nagle/delayed-ACK stall on kept-alive connections."""
    with FakeLLMServer(default=Reply.text("ok")) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            _post(srv, CHAT, conn)  # warm up
            times = []
            for _ in range(20):
                start = time.perf_counter()
                assert _post(srv, CHAT, conn)[0] == 200
                times.append(time.perf_counter() - start)
        finally:
            conn.close()
    # Nagle's algorithm against delayed ACKs holds every kept-alive reply ~40 ms; the
    # fastest of 20 shows whether that floor is there, whatever else loads the machine
    assert min(times) < 0.03, f"the fastest of 20 kept-alive requests took {min(times):.3f} s"


def test_kept_alive_requests_through_the_openai_sdk_are_fast() -> None:
    openai = pytest.importorskip("openai")

    async def go(base_url: str) -> float:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=5)
        try:
            await client.chat.completions.create(model="m", messages=[])  # warm up
            times = []
            for _ in range(20):
                start = time.perf_counter()
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}]
                )
                times.append(time.perf_counter() - start)
            return min(times)
        finally:
            await client.close()

    with FakeLLMServer(default=Reply.text("ok")) as srv:
        fastest = asyncio.run(go(srv.base_url))
        assert len(srv.chat_requests) == 21
    # see above: no ~40 ms floor under each kept-alive request
    assert fastest < 0.03, f"the fastest of 20 kept-alive requests took {fastest:.3f} s"


def test_in_flight_is_counted() -> None:
    with FakeLLMServer(default=Reply.slow(0.3, Reply.text("ok"))) as srv:
        threads = [threading.Thread(target=_post, args=(srv, CHAT)) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 2
        while srv.in_flight < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        for t in threads:
            t.join(5)
        # the server counts a request done just after its reply is sent, so a client
        # may have its answer a moment before the count drops
        deadline = time.monotonic() + 5
        while srv.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.max_in_flight == 3
        assert srv.in_flight == 0


def test_stop_is_prompt_with_a_slow_reply_in_flight() -> None:
    srv = FakeLLMServer([Reply.slow(30, Reply.text("late"))]).start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(_post(srv, CHAT)[0])
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 2
    while srv.in_flight < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.in_flight == 1
    start = time.perf_counter()
    srv.stop()
    assert time.perf_counter() - start < 1.0
    worker.join(2)
    assert not worker.is_alive()
    assert outcome and not isinstance(outcome[0], int)  # the reply was dropped


def test_stop_closes_idle_kept_alive_connections_and_the_port() -> None:
    srv = FakeLLMServer(default=Reply.text("ok")).start()
    port = srv.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert _post(srv, CHAT, conn)[0] == 200  # the connection stays open
    start = time.perf_counter()
    srv.stop()
    assert time.perf_counter() - start < 1.0
    conn.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    srv.stop()  # a second stop is harmless


def test_base_url_needs_a_running_server() -> None:
    srv = FakeLLMServer()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with pytest.raises(ValueError):
        FakeLLMServer(models=[])
