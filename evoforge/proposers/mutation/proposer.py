"""The model-free proposer: AST mutation operators chosen by a bandit."""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Callable
from typing import Any

from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import BlockError, Template, extract_regions
from evoforge.proposers.bandit import Bandit
from evoforge.proposers.base import Proposal, Proposer
from evoforge.proposers.mutation.canonical import Canonical, canonical
from evoforge.proposers.mutation.cmaes import CMATuner
from evoforge.proposers.mutation.edits import EditRecords, describe_edit
from evoforge.proposers.mutation.fresh import FreshStructures
from evoforge.proposers.mutation.kinds import check_program
from evoforge.proposers.mutation.operators import OPERATORS, OpContext, check_primitive
from evoforge.proposers.mutation.regions import node_limit, oversized

CMAES = "cmaes"
"""The operator that tunes an elite's numeric literals with CMA-ES (see ``cmaes.py``)."""
DEFAULT_SIGMA = 0.1
"""Initial relative step size of ``tune`` for a parent it has not tuned yet."""
SIGMA_MIN = 1e-4
SIGMA_MAX = 2.0
SIGMA_UP = math.exp(0.8)
SIGMA_DOWN = math.exp(-0.2)
SIGMA_SAME = math.exp(0.4)
"""``tune``'s step grows by this after a child that behaved like a program made before:
a step that changes nothing is too small, not too large."""
MAX_SIGMAS = 10_000
"""Step sizes remembered at most; the oldest are forgotten first."""
MAX_FORMS = 200_000
"""Canonical forms of programs made remembered at most; the oldest are forgotten first."""
TUNING = ("constant", "tune", CMAES)
"""Operators that only move numeric literals; capped while the run is stalled."""
STALLED_TUNING_SHARE = 0.1
"""Share of proposals that may be drawn among :data:`TUNING` while the run is stalled."""


def region_line_spans(template: Template, program: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the regions of ``program``.

    An empty region gets an empty range (``start > end``).

    Raises:
        BlockError: if ``program`` is not a rendering of ``template``.
    """
    regions = extract_regions(template, program)
    spans: list[tuple[int, int]] = []
    line = 1
    for fixed, region in zip(template.fixed, regions, strict=False):
        line += fixed.count("\n")
        if region and not region.endswith("\n"):
            region += "\n"
        count = region.count("\n")
        spans.append((line, line + count - 1))
        line += count
    return spans


def _binding_of(node: ast.AST) -> list[tuple[str, int]]:
    """The names ``node`` itself binds, with its line."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [(node.id, node.lineno)]
    if isinstance(node, ast.arg):
        return [(node.arg, node.lineno)]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [(node.name, node.lineno)]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(alias.asname or alias.name.split(".")[0], node.lineno)
                for alias in node.names if alias.name != "*"]
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return [(node.name, node.lineno)]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [(node.rest, node.lineno)]
    return []


def names_bound_outside(template: Template, program: str) -> set[str]:
    """Names that ``program`` binds outside its evolve regions.

    Imports, function parameters (also of a function whose body is a region),
    assigned names, ``def``/``class`` names of the fixed text.

    Returns:
        The names; empty when ``program`` does not parse or is not a rendering
        of ``template``.
    """
    try:
        tree = ast.parse(program)
        spans = region_line_spans(template, program)
    except (SyntaxError, ValueError, BlockError):
        return set()
    return {name for name, line in _visible_bindings(tree, spans)
            if not any(start <= line <= end for start, end in spans)}


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _scope_nodes(node: ast.AST) -> list[ast.AST]:
    """``node``'s descendants in its own scope: a nested def or class is included (its
    name is bound here), its body, arguments and defaults are not."""
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        out.append(child)
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stack.extend(child.decorator_list)  # evaluated in this scope
        elif not isinstance(child, _SCOPES):
            stack.extend(ast.iter_child_nodes(child))
    return out


def _visible_bindings(tree: ast.Module, spans: list[tuple[int, int]]) -> list[tuple[str, int]]:
    """The bindings an evolve region can see: the module's, and those of every function
    or class around a region (a function's parameters are among its scope's nodes); not
    the locals of a function of the fixed text, which no region can read."""
    found = [b for node in _scope_nodes(tree) for b in _binding_of(node)]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and any(
                node.lineno <= start and end <= (node.end_lineno or node.lineno)
                for start, end in spans):
            found.extend(b for child in _scope_nodes(node) for b in _binding_of(child))
    return found


def _static_problem(code: str) -> str | None:
    """Why ``code`` cannot work by static shape inference, or None (also if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    try:
        return check_program(tree)
    except RecursionError:
        return None


def _pick_donor(template: Template, donors: list[Candidate],
                rng: random.Random) -> tuple[Candidate | None, list[str] | None]:
    """A crossover partner drawn at random from ``donors``, with its regions (the first
    whose evolve blocks read), or (None, None)."""
    pool = list(donors)
    while pool:
        donor = pool.pop(rng.randrange(len(pool)))
        try:
            return donor, extract_regions(template, donor.code)
        except BlockError:
            continue
    return None, None


class MutationProposer(Proposer):
    """Proposes programs by mutating the evolve regions of a parent, no model needed.

    A bandit (``config.bandit``) picks one operator of
    :data:`~evoforge.proposers.mutation.operators.OPERATORS` per proposal and
    learns from :meth:`feedback` which ones produce improvements. A proposal
    that is wasted counts as a failure of the operator that made it: a program
    made before (caught here, before it is proposed, or as a functional
    duplicate after its probe) or one the shape check rejects. ``tune``
    keeps a step size per parent program, adapted by the 1/5th success rule.

    Equivalents (``config.skip_equivalent``): most of the waste of a model-free run
    is functional duplicates, programs that differ from one made before only in ways
    that do not change what they compute. A proposal whose canonical form (see
    :mod:`.canonical`: ``x + 0``, ``1 * x``, ``--x`` ... rewritten away) equals that
    of a program this proposer made or mutated, or that adds a collapsed
    sub-expression (``x - x``, ``0 * x`` ...) its parent did not have, is dropped
    before it is proposed and counts as a failure of its operator, like a program
    made before.

    Wasteful edits (``config.site_avoidance``, ``config.waste_avoidance``): the run
    counts the wasted children per place of the program edited and per kind of edit,
    and an edit drawn where (or of a kind that) mostly wasted is drawn again (not a
    failure of the operator); see :mod:`.edits`.

    Stagnation: after ``config.stall_after`` outcomes (:meth:`feedback`) without a
    new best fitness, the run counts as stalled and the operators that only move
    numeric literals (:data:`TUNING`) are drawn for at most
    :data:`STALLED_TUNING_SHARE` of the proposals, so structural mutation gets the
    rest; a new best ends the stall.

    Args:
        template: the program's template (fixed parts and original regions).
        config: the ``mutation`` section of the run config; defaults if None.

    Raises:
        ValueError: for an unknown operator name or an unusable primitive.
    """

    max_attempts = 20
    """Operator draws per :meth:`propose` before giving up on a parent."""
    max_failures_per_operator = 3
    """Failed tries of one operator on one parent before it is left out."""
    max_redraws = 20
    """Edits drawn again for their wasteful kind or site per :meth:`propose`, on top of
    the attempts; past it the next edit is kept whatever its kind."""

    def __init__(self, template: Template, config: MutationConfig | None = None) -> None:
        super().__init__(template)
        config = config if config is not None else MutationConfig()
        valid = [*OPERATORS, CMAES]
        names = list(dict.fromkeys(config.operators)) if config.operators else valid
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise ValueError(
                f"unknown mutation operator(s) {', '.join(map(repr, unknown))} in "
                f"mutation.operators; valid: {', '.join(valid)}"
            )
        self.operators = names
        self.primitives = list(config.primitives or [])
        for template_text in self.primitives:
            problem = check_primitive(template_text)
            if problem is not None:
                raise ValueError(f"mutation.primitives: {problem}")
        self.bandit = Bandit(names, kind=config.bandit)
        self.tuner = CMATuner()
        self.sigmas: dict[str, float] = {}
        self.is_known: Callable[[str], bool] | None = None
        """Set by the run loop: True for the normalized hash of a program already made."""
        self.rejected_early = 0
        """Proposals dropped before evaluation: already made, or statically ill-shaped."""
        self.stall_after = config.stall_after
        self.skip_equivalent = config.skip_equivalent
        self.forms: dict[str, str] = {}
        """Canonical hash -> normalized hash of the first program made or mutated with that
        form (insertion-ordered, bounded)."""
        self.equivalents = 0
        """Proposals dropped as equivalent to a program made, or collapsed."""
        self.best_fitness: float | None = None
        """The best child fitness :meth:`feedback` has been told of."""
        self.since_best = 0
        """Outcomes since :attr:`best_fitness` last improved."""
        self.stalled_proposals = 0
        """Proposals made while the run was stalled."""
        self.edits = EditRecords(config.waste_avoidance, config.site_avoidance)
        self.max_nodes = node_limit(config.max_nodes, template.regions)
        self.oversized = 0  # children dropped for growing past max_nodes
        self.fresh = FreshStructures(config.fresh_tuning, config.initial_sweep)
        self._outside: set[str] | None = None
        try:
            ast.parse(template.source)
        except (SyntaxError, ValueError):
            pass
        else:
            self._outside = names_bound_outside(template, template.source)

    def _names_outside(self, code: str) -> set[str]:
        if self._outside is not None:
            return self._outside
        return names_bound_outside(self.template, code)

    def propose_with(self, operators: list[str], parent: Candidate,
                     inspirations: list[Candidate], rng: random.Random) -> Proposal | None:
        """Like :meth:`propose`, drawing only among ``operators``."""
        return self._propose(parent, inspirations, rng, operators)

    def propose(
        self, parent: Candidate, inspirations: list[Candidate], rng: random.Random
    ) -> Proposal | None:
        """Mutate ``parent``; ``crossover`` mates it with one of ``inspirations``.

        Draws an operator from the bandit, applies it, and checks that the whole
        program parses and differs from the parent; on failure draws again, at
        most :attr:`max_attempts` times. An operator that does not apply to this
        parent (or ``crossover`` without an inspiration) is not drawn again.

        Returns:
            The proposal, or None when no operator produced a valid change.
        """
        return self._propose(parent, inspirations, rng, self.operators)

    @property
    def stalled(self) -> bool:
        """True when ``stall_after`` outcomes in a row brought no new best."""
        return self.stall_after > 0 and self.since_best >= self.stall_after

    def _stall_filter(self, operators: list[str], rng: random.Random) -> list[str]:
        """``operators`` without the tuning ones for most proposals of a stalled run."""
        if not self.stalled:
            return operators
        self.stalled_proposals += 1
        structural = [op for op in operators if op not in TUNING]
        if structural and rng.random() >= STALLED_TUNING_SHARE:
            return structural
        return operators

    def _propose(self, parent: Candidate, inspirations: list[Candidate],
                 rng: random.Random, operators: list[str]) -> Proposal | None:
        self.fresh.sweep_initial(parent, self._regions, rng)
        step = (self.fresh.next_step(rng, self._regions) if "tune" in operators
                else None)
        if step is not None:  # a new structure's constants first (see fresh.py)
            structure, stepped = step
            code = self._render(stepped)
            if code is not None and not self._wasted(code, True, None):
                self._remember(code)
                stepped_proposal = Proposal(code=code, operator="tune",
                                            parent_ids=[structure.candidate_id])
                self.fresh.made(stepped_proposal, structure)
                return stepped_proposal
        allowed = self._stall_filter(operators, rng)
        made = self._propose_among(parent, inspirations, rng, allowed)
        if made is None and allowed != operators:  # no structural change applied
            made = self._propose_among(parent, inspirations, rng, operators)
        return made

    def _propose_among(self, parent: Candidate, inspirations: list[Candidate],
                       rng: random.Random, operators: list[str]) -> Proposal | None:
        try:
            regions = extract_regions(self.template, parent.code)
        except BlockError:
            return None
        names_outside = self._names_outside(parent.code)
        parent_checks = _static_problem(parent.code) is None
        parent_form = self._remember(parent.code)
        donors = [c for c in inspirations if c.id != parent.id and c.code != parent.code]
        excluded: set[str] = set()
        failures: dict[str, int] = {}
        redrawn: dict[str, int] = {}
        attempts = redraws = 0
        while attempts < self.max_attempts:
            attempts += 1
            allowed = [op for op in operators if op not in excluded]
            if not allowed:
                break
            op = self.bandit.select(rng, allowed)
            parent_ids = [parent.id]
            meta: dict[str, Any] = {}
            other: list[str] | None = None
            sigma = DEFAULT_SIGMA
            if op == "crossover":
                donor, other = _pick_donor(self.template, donors, rng)
                if donor is None:
                    excluded.add(op)
                    continue
                parent_ids.append(donor.id)
            if op == CMAES:
                made = self.tuner.propose(parent, list(regions), rng)
                if made is None:
                    excluded.add(op)
                    continue
                tuned, meta, base_id = made
                tuned_code = self._render(tuned)
                if tuned_code is None or self._wasted(tuned_code, parent_checks, parent_form):
                    # a program made before is about as good as the base: tell it so
                    self.tuner.tell(meta, None if tuned_code is None else meta["base_fitness"])
                    if tuned_code is not None:
                        self.rejected_early += 1
                        self.bandit.update(op, 0.0)  # wasted: a failure of this operator
                    failures[op] = failures.get(op, 0) + 1
                    if failures[op] >= self.max_failures_per_operator:
                        excluded.add(op)
                    continue
                self._remember(tuned_code)
                return Proposal(code=tuned_code, operator=op, parent_ids=[base_id], meta=meta)
            if op == "tune":
                key = normalized_hash(parent.code)
                sigma = self.sigmas.get(key, DEFAULT_SIGMA)
                meta = {"sigma_key": key, "sigma": sigma}
            ctx = OpContext(rng=rng, primitives=self.primitives,
                            names_outside=names_outside, other=other, sigma=sigma)
            try:
                new_regions = OPERATORS[op](list(regions), ctx)
            except (ValueError, TypeError, SyntaxError, RecursionError, OverflowError):
                new_regions = None
            if new_regions is None:
                excluded.add(op)
                continue
            code = self._render(new_regions)
            if code is not None and oversized(self.max_nodes, new_regions, regions):
                self.oversized += 1
                code = None  # bloat control: a failed try of this operator on this parent
            kind = None
            sites: list[str] = []
            if code is not None and code != parent.code:
                if self._wasted(code, parent_checks, parent_form):
                    self.rejected_early += 1
                    self.bandit.update(op, 0.0)  # wasted: a failure of this operator
                    code = None
                else:  # named only when kept for now: a dropped program needs no name
                    kind, sites = describe_edit(op, regions, new_regions)
                if (kind is not None and redraws < self.max_redraws
                        and not self.edits.keep(kind, sites, rng)):
                    redraws += 1
                    attempts -= 1  # not a failure of the operator: draw again
                    redrawn[op] = redrawn.get(op, 0) + 1
                    # an operator whose edits here are all of one kind (tune moves every
                    # constant of one expression) would be redrawn to the limit: try others
                    if (redrawn[op] >= self.max_failures_per_operator
                            and any(o != op and o not in excluded for o in operators)):
                        excluded.add(op)
                    continue
            if code is None or code == parent.code:
                failures[op] = failures.get(op, 0) + 1
                if failures[op] >= self.max_failures_per_operator:
                    excluded.add(op)
                continue
            self._remember(code)
            if kind is not None:
                meta.update(edit_kind=kind, edit_sites=sites)
            self.fresh.mark(op, regions, new_regions, meta)
            return Proposal(code=code, operator=op, parent_ids=parent_ids, meta=meta)
        return None

    def _wasted(self, code: str, parent_checks: bool, parent_form: Canonical | None) -> bool:
        """True for a program made before, one the shape check says cannot work, or
        (``skip_equivalent``) an equivalent or collapsed one (see the class docstring).

        The shape check only counts when the parent passes it, so an inference
        that is wrong about some program cannot block all of its children.
        """
        code_hash = normalized_hash(code)
        if self.is_known is not None and self.is_known(code_hash):
            return True
        if parent_checks and _static_problem(code) is not None:
            return True
        if not self.skip_equivalent:
            return False
        form = canonical(code)
        if form is None:
            return False
        # the same text again is a twin, not an equivalent: that is is_known's to say
        equivalent = self.forms.get(form.hash, code_hash) != code_hash
        if equivalent or (parent_form is not None and form.collapsed > parent_form.collapsed):
            self.equivalents += 1
            return True
        return False

    def _remember(self, code: str) -> Canonical | None:
        """Note the canonical form of a program made or mutated; return it."""
        if not self.skip_equivalent:
            return None
        form = canonical(code)
        if form is not None:
            first = self.forms.pop(form.hash, "") or normalized_hash(code)
            self.forms[form.hash] = first  # moved to the end: the oldest go first
            while len(self.forms) > MAX_FORMS:
                del self.forms[next(iter(self.forms))]
        return form

    def _regions(self, code: str) -> list[str]:
        return extract_regions(self.template, code)

    def _render(self, regions: list[str]) -> str | None:
        try:
            code = self.template.render(regions)
            ast.parse(code)
        except (BlockError, SyntaxError, ValueError, RecursionError):
            return None
        return code

    def feedback(self, proposal: Proposal, parent_fitness: float | None,
                 child_fitness: float | None, error: str | None = None) -> None:
        """Reward the operator with 1.0 if the child beat its parent, else 0.0.

        A child without a fitness (failed, or a duplicate: the loop reports a
        functional duplicate with ``child_fitness`` None) is a failure. The
        outcome also moves the stall count (see the class docstring). For
        ``tune`` also adapt the parent's step size (1/5th success rule: times
        ``exp(0.8)`` on success, ``exp(-0.2)`` otherwise, but ``exp(0.4)`` after a
        duplicate, reported with neither fitness nor error); an improved child starts
        from the adapted step size.
        """
        self.tuner.observe(child_fitness)
        if isinstance(proposal.meta.get("fresh_fitness"), float):
            parent_fitness = proposal.meta["fresh_fitness"]  # tuned a waiting structure
        self.fresh.observe(proposal, parent_fitness, child_fitness, self.best_fitness)
        self.edits.observe(proposal.meta, wasted=child_fitness is None)
        if (child_fitness is not None and math.isfinite(child_fitness)
                and (self.best_fitness is None or child_fitness > self.best_fitness)):
            self.best_fitness = float(child_fitness)
            self.since_best = 0
        else:
            self.since_best += 1
        if proposal.operator == CMAES:
            self.tuner.tell(proposal.meta, child_fitness)
            # the child derives from the strategy's base, not from the sampled parent
            parent_fitness = proposal.meta.get("base_fitness", parent_fitness)
        improved = (child_fitness is not None and parent_fitness is not None
                    and child_fitness > parent_fitness)
        self.bandit.update(proposal.operator, 1.0 if improved else 0.0)
        key = proposal.meta.get("sigma_key")
        if proposal.operator != "tune" or not isinstance(key, str):
            return
        sigma = self.sigmas.get(key, float(proposal.meta.get("sigma", DEFAULT_SIGMA)))
        same = child_fitness is None and error is None  # a duplicate, not a failure
        sigma *= SIGMA_UP if improved else SIGMA_SAME if same else SIGMA_DOWN
        sigma = min(max(sigma, SIGMA_MIN), SIGMA_MAX)
        self._set_sigma(key, sigma)
        if improved:
            self._set_sigma(normalized_hash(proposal.code), sigma)

    def _set_sigma(self, key: str, sigma: float) -> None:
        self.sigmas.pop(key, None)
        self.sigmas[key] = sigma
        while len(self.sigmas) > MAX_SIGMAS:
            del self.sigmas[next(iter(self.sigmas))]

    def stats(self) -> dict[str, Any]:
        """The bandit's per-operator statistics, the ``tune`` step sizes, what was avoided.

        ``avoided``: proposals dropped before evaluation (programs already made,
        ill-shaped, equivalent or collapsed), ``equivalent`` those of them dropped as
        equivalent or collapsed; ``edits``: per kind of edit, children made and wasted,
        and the edits drawn again for their kind; ``sites``: the same per sub-tree
        edited (see ``site_avoidance``); ``stall``: the stall count, the best
        fitness it counts from and the proposals made while stalled; ``cmaes``: strategies
        and generations run.
        """
        return {"bandit": self.bandit.stats(), "tune_sigma": dict(self.sigmas),
                "avoided": self.rejected_early, "equivalent": self.equivalents,
                "oversized": self.oversized,
                **self.edits.stats(), "fresh": self.fresh.stats(),
                "stall": {"since_best": self.since_best, "best": self.best_fitness,
                          "stalled_proposals": self.stalled_proposals},
                "cmaes": {"strategies": self.tuner.strategies,
                          "generations": self.tuner.generations,
                          "best_seen": self.tuner.best_seen}}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore what :meth:`stats` returned."""
        bandit = stats.get("bandit")
        if isinstance(bandit, dict):
            self.bandit.load_stats(bandit)
        if isinstance(stats.get("avoided"), int):
            self.rejected_early = stats["avoided"]
        if isinstance(stats.get("equivalent"), int):
            self.equivalents = stats["equivalent"]
        if isinstance(stats.get("oversized"), int):
            self.oversized = stats["oversized"]
        self.edits.load_stats(stats)
        stall = stats.get("stall")
        if isinstance(stall, dict):
            self.since_best = max(int(stall.get("since_best", 0)), 0)
            best = stall.get("best")
            self.best_fitness = float(best) if isinstance(best, int | float) else None
            self.stalled_proposals = max(int(stall.get("stalled_proposals", 0)), 0)
        if isinstance(stats.get("fresh"), dict):  # a resumed run goes on with the queue
            self.fresh.load_stats(stats["fresh"])
        cmaes = stats.get("cmaes")
        if isinstance(cmaes, dict):  # counters only: a resumed run starts a new strategy
            self.tuner.strategies = int(cmaes.get("strategies", 0))
            self.tuner.generations = int(cmaes.get("generations", 0))
            best = cmaes.get("best_seen")
            self.tuner.best_seen = float(best) if isinstance(best, int | float) else None
        sigmas = stats.get("tune_sigma")
        if isinstance(sigmas, dict):
            self.sigmas = {
                str(k): min(max(float(v), SIGMA_MIN), SIGMA_MAX) for k, v in sigmas.items()
            }
