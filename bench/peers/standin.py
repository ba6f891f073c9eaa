"""Stand-in models for the peer benchmarks: replies computed from the prompt, no model.

Every framework formats its prompt its own way, but each shows the program to improve
in a fenced code block under a heading of its own. :func:`parent_from_prompt` finds that
block; the replies are SEARCH/REPLACE diffs against it, so each framework applies them
with its own diff code and evaluates what it made.

- :class:`CounterModel` (the throughput parts): a diff that sets the ``return`` line of
  the trivial problem to the next number, so every reply is a new, valid program.
- :class:`MutationModel` (the search-quality part): a diff of a seeded model-free
  mutation of the parent (evoforge's AST operators), and a fixed share of broken replies
  (a SEARCH that is not in the program), so the frameworks get proposals of one kind and
  differ only in archive, selection and plumbing.

Imported by ``bench/peers/server.py`` (in evoforge's environment) and by the tests.
"""

from __future__ import annotations

import difflib
import random
import re
import threading
from collections.abc import Sequence
from typing import Any

from evoforge.candidate import Candidate
from evoforge.config import MutationConfig
from evoforge.problem.blocks import BlockError, parse_blocks
from evoforge.proposers.mutation import MutationProposer
from evoforge.testing import Reply, search_replace_block

# Headings above the program to improve: OpenEvolve, evoforge, ShinkaEvolve.
PARENT_HEADINGS = ("# Current Program", "# The program to improve", "# Current program")
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


def prompt_text(request: Any) -> str:
    """The text of a chat request's messages, system message first."""
    messages = request.get("messages") if isinstance(request, dict) else None
    parts = []
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content:
            parts.append(str(content))
    return "\n".join(parts)


def parent_from_prompt(text: str) -> str | None:
    """The program the prompt asks to improve: the first fenced block after a known
    heading (the last such heading), else the first fenced block; None without one."""
    start = max((text.rfind(h) for h in PARENT_HEADINGS), default=-1)
    match = _FENCE.search(text, max(start, 0))
    if match is None:
        return None
    code = match.group(1)
    return code if code.endswith("\n") else code + "\n"


def diff_blocks(parent: str, child: str) -> str:
    """SEARCH/REPLACE blocks that turn ``parent`` into ``child``.

    One block per changed hunk; a hunk's SEARCH grows by a line of context on each
    side until it occurs once in ``parent`` (an insertion gets context at once).
    """
    old, new = parent.splitlines(), child.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    blocks = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before = after = 0
        while True:
            a0, a1 = max(i1 - before, 0), min(i2 + after, len(old))
            search = "\n".join(old[a0:a1])
            unique = search.strip() and parent.count(search) == 1
            if unique or (a0 == 0 and a1 == len(old)):
                break
            before, after = before + 1, after + 1
        replace = old[a0:i1] + new[j1:j2] + old[i2:a1]
        blocks.append(search_replace_block(search, "\n".join(replace)))
    return "".join(blocks)


def diff_reply(parent: str, child: str, idea: str = "A focused change.") -> Reply:
    """A chat reply with one sentence and the diff from ``parent`` to ``child``."""
    return Reply.text(f"{idea}\n\n{diff_blocks(parent, child)}")


class CounterModel:
    """Answers each request with a diff setting the first ``return`` line of the parent
    to the next integer (the trivial problem's score), so replies never repeat."""

    def __init__(self, delay: float = 0.0) -> None:
        """Args: delay: seconds each reply waits before it is sent."""
        self.delay = delay
        self._lock = threading.Lock()
        self._next = 0

    def __call__(self, request: Any) -> Reply:
        """The reply to one chat request (a garbage reply when no program is found)."""
        with self._lock:
            self._next += 1
            value = self._next
        parent = parent_from_prompt(prompt_text(request))
        line = re.search(r"^([ \t]*)return .*$", parent or "", re.MULTILINE)
        if parent is None or line is None:
            reply = Reply.garbage()
        else:
            child = parent.replace(line.group(0), f"{line.group(1)}return {value}", 1)
            reply = diff_reply(parent, child, "Return a larger value.")
        return Reply.slow(self.delay, reply) if self.delay else reply


class MutationModel:
    """A seeded model-free mutation of the parent as a diff, and some broken replies.

    Request ``n`` (counted from 1 in arrival order) draws from ``Random(f"{seed}:{n}")``:
    with probability ``broken`` the reply is a diff whose SEARCH is not in the program,
    else one of evoforge's mutation operators (no crossover: there is no second parent)
    changes the parent's evolve regions and the reply is the diff to that program.
    """

    def __init__(self, seed: int, broken: float = 0.1, delay: float = 0.0,
                 primitives: Sequence[str] | None = None) -> None:
        """Args:
            seed: the stand-in model's seed.
            broken: share of broken replies.
            delay: seconds each reply waits before it is sent.
            primitives: expression templates for ``expr_replace`` (None: evoforge's).
        """
        self.seed, self.broken, self.delay = seed, broken, delay
        self.config = MutationConfig(
            operators=["constant", "operator_swap", "stmt_delete", "stmt_duplicate",
                       "stmt_swap", "expr_replace", "tune"],
            primitives=list(primitives) if primitives else None)
        self._lock = threading.Lock()
        self._count = 0
        self.sent = {"mutation": 0, "broken": 0, "no_program": 0, "no_mutation": 0}

    def _note(self, kind: str) -> None:
        with self._lock:
            self.sent[kind] += 1

    def mutate(self, parent: str, rng: random.Random) -> str | None:
        """A mutation of ``parent``'s evolve regions (the whole file without markers)."""
        try:
            template = parse_blocks(parent)
        except BlockError:
            return None
        proposer = MutationProposer(template, self.config)
        cand = Candidate(id=1, seq=1, island=0, parent_ids=(), operator="parent",
                         code=parent, code_hash="")
        proposal = proposer.propose(cand, [], rng)
        return None if proposal is None or proposal.code == parent else proposal.code

    def __call__(self, request: Any) -> Reply:
        """The reply to one chat request."""
        with self._lock:
            self._count += 1
            rng = random.Random(f"{self.seed}:{self._count}")
        parent = parent_from_prompt(prompt_text(request))
        if parent is None:
            self._note("no_program")
            reply = Reply.garbage()
        elif rng.random() < self.broken:
            self._note("broken")
            missing = "    return this_line_is_not_in_the_program()"
            reply = Reply.text("A change.\n\n" + search_replace_block(missing, "    return 0"))
        else:
            child = self.mutate(parent, rng)
            if child is None:
                self._note("no_mutation")
                reply = Reply.garbage()
            else:
                self._note("mutation")
                reply = diff_reply(parent, child)
        return Reply.slow(self.delay, reply) if self.delay else reply
