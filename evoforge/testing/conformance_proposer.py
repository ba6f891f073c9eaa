"""Contract tests every :class:`~evoforge.proposers.base.Proposer` must pass.

Subclass :class:`ProposerConformance` in a test module (the subclass's name must start
with ``Test`` for pytest to collect it) and define :meth:`~ProposerConformance.make_proposer`;
the project's own tests run it over the model-free proposer, the LLM proposer on an
in-process backend and the scripted proposer, and a user's proposer plug-in can reuse it::

    from evoforge.testing import ProposerConformance

    class TestMyProposer(ProposerConformance):
        def make_proposer(self, template):
            return MyProposer(template)
"""

from __future__ import annotations

import asyncio
import json
import random

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.problem.blocks import Template, parse_blocks
from evoforge.proposers.base import Proposal, Proposer

__all__ = ["CONFORMANCE_PROGRAM", "ProposerConformance"]

CONFORMANCE_PROGRAM = '''"""A small program with one evolve region, for proposer contract tests."""
import math

# EVOLVE-BLOCK-START
def score(x, y):
    """Combine two numbers."""
    total = 2.0 * x + 3.0 * y
    if x > y:
        total = total - 1.5
    return math.sqrt(abs(total)) + 0.25
# EVOLVE-BLOCK-END


def run():
    return [score(i, 10 - i) for i in range(10)]
'''


class ProposerConformance:
    """The proposer contract (see :class:`~evoforge.proposers.base.Proposer`), as tests.

    Attributes:
        program: the program the proposals start from (override for another language
            or shape; it needs evolve markers).
        rounds: how many proposals each test asks for.
        session_stats: keys of ``stats()`` that describe this session only (request
            counters of a client, say) and are not restored by ``load_stats``.
    """

    program: str = CONFORMANCE_PROGRAM
    rounds: int = 12
    session_stats: tuple[str, ...] = ()

    def make_proposer(self, template: Template) -> Proposer:
        """A fresh proposer for ``template`` (define it in the subclass)."""
        raise NotImplementedError

    # -- helpers

    def _template(self) -> Template:
        return parse_blocks(self.program)

    def _parent(self, code: str | None = None, ident: int = 1) -> Candidate:
        code = code or self.program
        return Candidate(id=ident, seq=ident, island=0, parent_ids=(), operator="initial",
                         code=code, code_hash=normalized_hash(code), status=Status.OK,
                         score=1.0, fitness=1.0)

    def _propose(self, proposer: Proposer, parent: Candidate,
                 rng: random.Random) -> Proposal | None:
        if proposer.asynchronous:
            return asyncio.run(proposer.propose_async(parent, [], rng))
        return proposer.propose(parent, [], rng)

    def _proposals(self, seed: int) -> list[Proposal | None]:
        template = self._template()
        proposer = self.make_proposer(template)
        rng = random.Random(seed)
        parent = self._parent()
        out = []
        for _ in range(self.rounds):
            proposal = self._propose(proposer, parent, rng)
            out.append(proposal)
            if proposal is not None:
                proposer.feedback(proposal, parent.fitness, None if proposal.rejected else 1.0)
        return out

    # -- the contract

    def test_proposals_keep_the_text_outside_the_evolve_regions(self) -> None:
        """Every proposal renders the template: the fixed text is kept byte for byte."""
        template = self._template()
        made = [p for p in self._proposals(seed=1) if p is not None]
        assert made, "the proposer made no proposal at all"
        for proposal in made:
            assert isinstance(proposal.operator, str) and proposal.operator
            assert proposal.parent_ids and proposal.parent_ids[0] == 1, proposal.parent_ids
            if proposal.rejected is not None:
                assert proposal.rejected.strip(), "a rejected proposal must say why"
                continue
            assert parse_blocks(proposal.code).fixed == template.fixed, proposal.operator

    def test_same_seed_same_proposals(self) -> None:
        """Randomness comes only from the rng it is given: one seed, one sequence."""
        def codes(seed: int) -> list[str | None]:
            return [None if p is None else p.code for p in self._proposals(seed)]

        assert codes(seed=7) == codes(seed=7)

    def test_stats_are_json_and_survive_a_restore(self) -> None:
        """What it learned is saved as JSON and restored by ``load_stats``."""
        template = self._template()
        proposer = self.make_proposer(template)
        rng, parent = random.Random(3), self._parent()
        for _ in range(self.rounds):
            proposal = self._propose(proposer, parent, rng)
            if proposal is not None:
                proposer.feedback(proposal, 1.0, 2.0 if rng.random() < 0.5 else None,
                                  None if proposal.rejected else "failed on purpose")
        stats = proposer.stats()
        assert json.loads(json.dumps(stats)) == stats
        restored = self.make_proposer(template)
        restored.load_stats(json.loads(json.dumps(stats)))
        again = restored.stats()
        for key in self.session_stats:
            stats.pop(key, None)
            again.pop(key, None)
        assert again == stats
