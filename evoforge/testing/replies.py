"""Scripted replies of the fake OpenAI-compatible server (:mod:`evoforge.testing.fake_llm`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = ["Reply", "ReplyScript", "search_replace_block"]


def search_replace_block(search: str, replace: str) -> str:
    """One SEARCH/REPLACE block in the common conflict-marker format.

    Args:
        search: the lines to find (a trailing newline is dropped).
        replace: the lines to put in their place (a trailing newline is dropped).

    Returns:
        The block, ending with a newline.
    """
    search = search[:-1] if search.endswith("\n") else search
    replace = replace[:-1] if replace.endswith("\n") else replace
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def _estimate_tokens(text: str) -> int:
    """About four characters a token, at least one."""
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake server; build it with the class methods.

    Attributes:
        kind: ``text``, ``diff``, ``rewrite``, ``garbage``, ``truncated``, ``error``
            or ``malformed`` (a slow reply keeps the kind of the reply it delays).
        content: the assistant message (chat replies).
        finish_reason: the choice's finish reason.
        status: the HTTP status.
        prompt_tokens: reported prompt tokens (None: estimated from the request).
        completion_tokens: reported completion tokens (None: estimated from content).
        retry_after: the Retry-After header in seconds (None: no header).
        body: the raw response body for errors and malformed replies.
        delay: seconds to wait before answering.
    """

    kind: str
    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    retry_after: float | None = None
    body: str | None = None
    delay: float = 0.0

    @classmethod
    def text(
        cls,
        content: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> Reply:
        """A normal chat completion.

        Args:
            content: the assistant message.
            prompt_tokens: reported prompt tokens (None: estimated from the request).
            completion_tokens: reported completion tokens (None: estimated from content).

        Returns:
            The reply.
        """
        return cls(
            "text", content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )

    @classmethod
    def diff(cls, search: str, replace: str) -> Reply:
        """A completion holding one SEARCH/REPLACE block with a little prose around it.

        Args:
            search: the lines to find.
            replace: the lines to put in their place.

        Returns:
            The reply.
        """
        content = (
            "Here is a change that should make the program faster:\n\n"
            + search_replace_block(search, replace)
            + "\nThe rest of the program stays as it is.\n"
        )
        return cls("diff", content)

    @classmethod
    def rewrite(cls, code: str) -> Reply:
        """A completion holding a whole program in a ```python fenced block.

        Args:
            code: the program.

        Returns:
            The reply.
        """
        code = code if code.endswith("\n") else code + "\n"
        content = (
            "Here is the rewritten program:\n\n```python\n"
            + code
            + "```\n\nIt keeps the same interface.\n"
        )
        return cls("rewrite", content)

    @classmethod
    def garbage(cls, content: str | None = None) -> Reply:
        """A successful completion with prose and no code.

        Args:
            content: the prose (None: a stock paragraph).

        Returns:
            The reply.
        """
        if content is None:
            content = (
                "Improving this program is an interesting challenge. One could consider "
                "better data structures, caching or a smarter ordering of the work, but "
                "the right choice depends on the inputs, so I would profile first."
            )
        return cls("garbage", content)

    @classmethod
    def truncated(cls, content: str) -> Reply:
        """A completion cut off by the token limit (finish_reason ``length``).

        Args:
            content: either a whole reply holding a fenced code block, which is cut
                halfway through that block, or bare code, which is put in a
                ```python block and cut halfway. The closing fence never arrives.

        Returns:
            The reply.
        """
        fence = content.find("```")
        if fence >= 0:
            start = content.find("\n", fence)
            start = len(content) if start < 0 else start + 1
            close = content.find("```", start)
            end = len(content) if close < 0 else close
            cut = content[: start + (end - start) // 2]
        else:
            cut = "Here is the improved program:\n\n```python\n" + content[: len(content) // 2]
        return cls("truncated", cut, finish_reason="length")

    @classmethod
    def error(
        cls, status: int, retry_after: float | None = None, body: str | dict[str, Any] | None = None
    ) -> Reply:
        """An HTTP error (429, 500, 503, 401, ...).

        Args:
            status: the HTTP status.
            retry_after: seconds for a Retry-After header (None: no header).
            body: the response body: a string sent as is, a dict sent as JSON, or
                None for an OpenAI-style ``{"error": {...}}`` object.

        Returns:
            The reply.
        """
        if body is None:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            error = {"message": f"fake error: HTTP {status} {phrase}", "type": "fake_error"}
            text = json.dumps({"error": {**error, "code": str(status)}})
        elif isinstance(body, dict):
            text = json.dumps(body)
        else:
            text = body
        return cls("error", status=status, retry_after=retry_after, body=text)

    @classmethod
    def slow(cls, seconds: float, inner_reply: Reply) -> Reply:
        """Another reply, sent after a delay (for timeout tests).

        Args:
            seconds: the delay.
            inner_reply: what to send afterwards.

        Returns:
            The reply.
        """
        return dataclasses.replace(inner_reply, delay=inner_reply.delay + seconds)

    @classmethod
    def malformed(cls) -> Reply:
        """A 200 whose JSON body is cut short (not valid JSON).

        Returns:
            The reply.
        """
        return cls("malformed", body='{"id": "chatcmpl-broken", "object": "chat.completion", "ch')


ReplyScript = Sequence[Reply] | Callable[[Any], Reply]
"""Replies in order, or a function from the request's JSON body to a reply."""


