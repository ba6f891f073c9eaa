"""The LLM proposer: one bandit over model-free operators and LLM modes, cost-aware models.

Modes: ``llm:diff`` (SEARCH/REPLACE edits, the default for remote models),
``llm:rewrite`` (the evolve regions in full), ``llm:crossover`` (combine two parents),
``llm:plan`` (ask for several distinct ideas first, then implement one, as in
PlanSearch), ``llm:function`` (one function of the evolve regions, shown alone) and
``llm:expression`` (a new return expression for one function). The same bandit that
picks model-free operators picks among them, rewarded when the child beats its parent.

Models with the ``small`` prompt style (the local model by default; ``prompt_style``
per model or ``llm.prompt_style`` for all) get short prompts about one function,
with a token limit fitted to it; their default modes are function, expression and
crossover, and diff/rewrite ask them for one function too. A local model continues
an answer that already holds the opening fence and the ``def`` line, and stops as
soon as its block is complete.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from evoforge.candidate import Candidate
from evoforge.config import RunConfig
from evoforge.problem.blocks import Template
from evoforge.proposers.bandit import Bandit
from evoforge.proposers.base import Proposal, Proposer
from evoforge.proposers.filters import NoveltyFilter
from evoforge.proposers.llm.apply import ApplyError, apply_diff, apply_rewrite
from evoforge.proposers.llm.focus import (
    FunctionTarget,
    answer_prefix,
    apply_expression,
    apply_function,
    expression_done,
    function_done,
    region_functions,
)
from evoforge.proposers.llm.novelty import NoveltyGate
from evoforge.proposers.llm.prices import split_price, with_known_price
from evoforge.proposers.llm.prompts import PromptBuilder, parse_ideas
from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec
from evoforge.proposers.mutation import MutationProposer

# requests in flight to one model when the config sets no max_concurrency: the loop's
# look-ahead (run/pace.py, up to 16 per worker) is the limit that matters; this one only
# bounds a model when many workers share it
MODEL_REQUESTS = 64
MODES = ("diff", "rewrite", "crossover", "plan", "function", "expression")
"""Every valid mode."""
DEFAULT_MODES = ("diff", "rewrite", "crossover", "plan")
"""The modes used when ``llm.modes`` is not set and some model takes full prompts."""
SMALL_MODES = ("function", "expression", "crossover")
"""The modes used when ``llm.modes`` is not set and every model takes small prompts."""
PROMPT_STYLES = ("full", "small")

# completion limits of the focused modes: tokens per character of code shown, slack
_TOKENS_PER_CHAR = 0.5
_FUNCTION_SLACK = 128
_EXPRESSION_TOKENS = 64
# share of a local model's expression proposals that extend the current expression by
# one term (the rest write a new one)
_EXTEND_SHARE = 0.5


class ChatBackend(Protocol):
    """What the proposer needs of a client: complete a chat for a model label."""

    async def complete(self, model_label: str, messages: list[dict[str, Any]], *,
                       temperature: float | None = None,
                       max_tokens: int | None = None) -> Completion:
        """One chat completion."""

    def available_models(self) -> list[str]:
        """Model labels that are not benched."""

    def seconds_until_available(self) -> float:
        """Seconds until a benched model can be asked again (0 when one can now)."""

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-model request statistics."""


class ModelBandit:
    """Picks a model by improvement per dollar (per token when prices are unknown).

    Thompson sampling: each model's improvement probability is drawn from its Beta
    posterior, weighted by the model's configured weight, and divided by its mean
    spend per proposal; untried models are tried first, in the configured order.
    """

    def __init__(self, specs: list[ModelSpec]) -> None:
        self.specs = {s.label: s for s in specs}
        self.priced = all(s.price_in is not None and s.price_out is not None for s in specs)
        self.arms: dict[str, dict[str, float]] = {
            s.label: {"pulls": 0.0, "improved": 0.0, "spent": 0.0} for s in specs}

    def select(self, rng: random.Random, labels: list[str]) -> str:
        """A model among ``labels``."""
        for label in labels:
            if self.arms[label]["pulls"] == 0:
                return label
        best, best_value = labels[0], -math.inf
        for label in labels:
            arm = self.arms[label]
            p = rng.betavariate(1 + arm["improved"], 1 + arm["pulls"] - arm["improved"])
            unit = max(arm["spent"] / arm["pulls"], 1e-12)
            value = self.specs[label].weight * p / unit
            if value > best_value:
                best, best_value = label, value
        return best

    def update(self, label: str, improved: bool, completion_tokens: int, prompt_tokens: int,
               cost: float | None) -> None:
        """Account one proposal's outcome and spend."""
        arm = self.arms.get(label)
        if arm is None:
            return
        arm["pulls"] += 1
        arm["improved"] += 1.0 if improved else 0.0
        if self.priced and cost is not None:
            arm["spent"] += cost
        else:
            arm["spent"] += (prompt_tokens + completion_tokens) / 1e6

    def stats(self) -> dict[str, dict[str, float]]:
        """Per model: pulls, improved, spent (dollars, or millions of tokens)."""
        return {k: dict(v) for k, v in self.arms.items()}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore :meth:`stats`."""
        for label, arm in stats.items():
            if label in self.arms and isinstance(arm, dict):
                self.arms[label].update({k: float(v) for k, v in arm.items()
                                         if k in self.arms[label]})


class LLMProposer(Proposer):
    """Proposes with LLMs and model-free operators, chosen by one bandit.

    Args:
        template: the program's template.
        config: the run configuration (``mutation`` and ``llm`` sections).
        specs: the models.
        backend: a chat backend serving every model label (remote and local).
        problem_dir: the problem folder, for prompt template overrides.
    """

    asynchronous = True
    max_failures_shown = 4

    def __init__(self, template: Template, config: RunConfig, specs: list[ModelSpec],
                 backend: ChatBackend, problem_dir: Path | None = None) -> None:
        super().__init__(template)
        if not specs:
            raise ValueError("the LLM proposer needs at least one model")
        self.backend = backend
        self.specs = {s.label: s for s in specs}
        self.mutation = MutationProposer(template, config.mutation)
        llm = config.llm
        style = llm.prompt_style
        if style is not None and style not in PROMPT_STYLES:
            raise ValueError(f"llm.prompt_style must be full or small, not {style!r}")
        # small prompts: a local model by default; per model (prompt_style) or for all
        self.styles = {s.label: s.prompt_style or style
                       or ("small" if s.api_base == "local" else "full") for s in specs}
        small = all(v == "small" for v in self.styles.values())
        modes = list(llm.modes or (SMALL_MODES if small else DEFAULT_MODES))
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown llm.modes {unknown}; valid: {', '.join(MODES)}")
        self.modes = [f"llm:{m}" for m in modes]
        include_mutation = llm.mutation_operators
        self.arms = (list(self.mutation.operators) if include_mutation else []) + self.modes
        self.bandit = Bandit(self.arms, kind=config.mutation.bandit)
        self.models = ModelBandit(specs)
        self.prompts = PromptBuilder(problem_dir, config.system_message,
                                     config.objective.metric, config.maximize)
        self.similarity = llm.fuzzy_similarity
        self.num_ideas = llm.num_ideas
        # a model's program too close to an evaluated one is not worth an evaluation
        self.filters = [NoveltyFilter(NoveltyGate(threshold=llm.novelty_threshold))]
        self.failures: deque[tuple[str, str]] = deque(maxlen=self.max_failures_shown)

    def propose(self, parent: Candidate, inspirations: list[Candidate],
                rng: random.Random) -> Proposal | None:
        """Synchronous proposals are model-free only (the loop uses propose_async)."""
        return self.mutation.propose(parent, inspirations, rng)

    async def propose_async(self, parent: Candidate, inspirations: list[Candidate],
                            rng: random.Random) -> Proposal | None:
        """Pick an arm; run a model-free operator or ask a model and apply its reply."""
        donors = [c for c in inspirations if c.id != parent.id and c.code != parent.code]
        allowed = [a for a in self.arms
                   if donors or a not in ("crossover", "llm:crossover")]
        models = await self._models(model_free=any(not a.startswith("llm:") for a in allowed))
        if not models:
            allowed = [a for a in allowed if not a.startswith("llm:")]
        if not allowed:
            return None
        arm = self.bandit.select(rng, allowed)
        if not arm.startswith("llm:"):
            proposal = self.mutation.propose_with([arm], parent, inspirations, rng)
            return proposal
        model = self.models.select(rng, models)
        other = rng.choice(donors) if arm == "llm:crossover" else None
        return await self._ask(arm, model, parent, inspirations, other, rng)

    async def _models(self, *, model_free: bool) -> list[str]:
        """The models that can be asked now; with every model benched and no model-free
        arm to fall back on, waits for the first to return rather than proposing
        nothing (a run of nothing-proposals would end the run as stalled)."""
        while True:
            models = [m for m in self.backend.available_models() if m in self.specs]
            wait = 0.0 if models or model_free else self.backend.seconds_until_available()
            if wait <= 0.0:
                return models
            await asyncio.sleep(wait + 0.01)

    async def _ask(self, arm: str, model: str, parent: Candidate,
                   inspirations: list[Candidate], other: Candidate | None,
                   rng: random.Random) -> Proposal:
        mode = arm.split(":", 1)[1]
        spec = self.specs[model]
        local = spec.api_base == "local"
        if (mode in ("function", "expression")
                or (self.styles[model] == "small" and mode != "plan")):
            targets = region_functions(parent.code)
            if targets:
                return await self._ask_small(arm, model, parent, other, targets, rng)
        failures = list(self.failures)
        parent_ids = [parent.id] + ([other.id] if other is not None else [])
        spent = Proposal(code=parent.code, operator=arm, parent_ids=parent_ids, model=model)
        replies: list[str] = []

        def account(reply: Completion) -> None:
            spent.prompt_tokens += reply.prompt_tokens
            spent.completion_tokens += reply.completion_tokens
            if reply.cost is not None:
                spent.cost = (spent.cost or 0.0) + reply.cost
            replies.append(reply.text)

        def done(code: str, rejected: str | None = None, **meta: Any) -> Proposal:
            spent.code = code
            spent.rejected = rejected
            spent.meta = {"model": model, "reply": replies[-1] if replies else "", **meta}
            return spent

        try:
            if mode == "plan":
                plan = await self.backend.complete(
                    model, self.prompts.messages("plan", parent, inspirations, failures,
                                                 num_ideas=self.num_ideas))
                account(plan)
                ideas = parse_ideas(plan.text)
                if not ideas:
                    return done(parent.code, "apply: no_ideas: the plan reply lists no ideas")
                idea = rng.choice(ideas)
                messages = self.prompts.messages("implement", parent, inspirations, failures,
                                                 idea=idea)
            else:
                # small local models answer with whole code, never with diffs
                ask = "rewrite" if (mode == "diff" and local) else mode
                messages = self.prompts.messages(ask, parent, inspirations, failures,
                                                 other=other)
                idea = None
            reply = await self.backend.complete(model, messages)
            account(reply)
        except LLMError as exc:
            return done(parent.code, f"llm: {exc}")
        try:
            if mode == "diff" and not local:
                result = apply_diff(self.template, parent.code, reply.text,
                                    similarity=self.similarity,
                                    finish_reason=reply.finish_reason)
            else:
                result = apply_rewrite(self.template, parent.code, reply.text,
                                       finish_reason=reply.finish_reason)
        except ApplyError as exc:
            self.failures.append((reply.text[-600:], f"the reply could not be used: {exc}"))
            return done(parent.code, f"apply: {exc}")
        return done(result.code, idea=idea, retries=reply.retries)

    async def _ask_small(self, arm: str, model: str, parent: Candidate,
                         other: Candidate | None, targets: list[FunctionTarget],
                         rng: random.Random) -> Proposal:
        """One function of the evolve regions, a short prompt, a fitted token limit;
        a local model continues an answer already started (fence and ``def`` line)."""
        mode = arm.split(":", 1)[1]
        spec = self.specs[model]
        local = spec.api_base == "local"
        kind = {"expression": "expression", "crossover": "crossover"}.get(mode, "function")
        if kind == "expression":
            targets = [t for t in targets if t.returns] or targets
            if not targets[0].returns:
                kind = "function"
        target = rng.choice(targets)
        other_source = None
        if kind == "crossover":
            twins = [t for t in region_functions(other.code) if t.name == target.name
                     and t.source != target.source] if other is not None else []
            if twins:
                other_source = twins[0].source
            else:
                kind = "function"
        if kind == "expression":
            limit = _EXPRESSION_TOKENS
        else:
            shown = len(target.source) + len(other_source or "")
            limit = int(shown * _TOKENS_PER_CHAR) + _FUNCTION_SLACK
        limit = min(limit, spec.max_tokens)
        extend = None
        if kind == "expression" and local and rng.random() < _EXTEND_SHARE:
            extend = rng.choice(("+", "-", "*"))
        prefix = answer_prefix(target, kind, extend) if local else None
        stop = expression_done if kind == "expression" else function_done(target.name)
        messages = self.prompts.small(kind, parent, target.source, other=other,
                                      other_function=other_source, prefix=prefix)
        parent_ids = [parent.id] + ([other.id] if other is not None else [])
        spent = Proposal(code=parent.code, operator=arm, parent_ids=parent_ids, model=model)
        meta: dict[str, Any] = {"model": model, "asked": kind, "function": target.name,
                                "max_tokens": limit, "extend": extend}
        try:
            if local:
                reply = await self.backend.complete(model, messages, max_tokens=limit,
                                                    stop=stop)  # type: ignore[call-arg]
            else:
                reply = await self.backend.complete(model, messages, max_tokens=limit)
        except LLMError as exc:
            spent.rejected = f"llm: {exc}"
            spent.meta = {**meta, "reply": ""}
            return spent
        spent.prompt_tokens += reply.prompt_tokens
        spent.completion_tokens += reply.completion_tokens
        spent.cost = reply.cost
        spent.meta = {**meta, "reply": reply.text, "finish_reason": reply.finish_reason,
                      "seconds": round(reply.seconds, 3)}
        try:
            if kind == "expression":
                result = apply_expression(self.template, parent.code, reply.text, target)
            else:
                result = apply_function(self.template, parent.code, reply.text, target,
                                        finish_reason=reply.finish_reason)
        except ApplyError as exc:
            self.failures.append((reply.text[-600:], f"the reply could not be used: {exc}"))
            spent.rejected = f"apply: {exc}"
            return spent
        spent.code = result.code
        return spent

    def feedback(self, proposal: Proposal, parent_fitness: float | None,
                 child_fitness: float | None, error: str | None = None) -> None:
        """Reward the arm and the model; remember failures for the next prompts."""
        improved = (child_fitness is not None and parent_fitness is not None
                    and child_fitness > parent_fitness)
        self.bandit.update(proposal.operator, 1.0 if improved else 0.0)
        if proposal.operator.startswith("llm:"):
            if proposal.model is not None:
                self.models.update(proposal.model, improved, proposal.completion_tokens,
                                   proposal.prompt_tokens, proposal.cost)
            if error and proposal.rejected is None:
                self.failures.append((proposal.code, error))
        else:
            self.mutation.feedback(proposal, parent_fitness, child_fitness)

    def stats(self) -> dict[str, Any]:
        """The bandit over arms, the model bandit, client statistics, tune step sizes."""
        return {"bandit": self.bandit.stats(), "models": self.models.stats(),
                "clients": self.backend.stats(), "mutation": self.mutation.stats()}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore :meth:`stats`."""
        if isinstance(stats.get("bandit"), dict):
            self.bandit.load_stats(stats["bandit"])
        if isinstance(stats.get("models"), dict):
            self.models.load_stats(stats["models"])
        if isinstance(stats.get("mutation"), dict):
            self.mutation.load_stats(stats["mutation"])


def parse_llm_spec(spec: str) -> ModelSpec:
    """A model from ``--llm``: ``openai:MODEL``, ``local:smollm2`` or ``URL:MODEL``.

    Any of them may end in ``@IN/OUT``, the price in US dollars per million prompt
    and completion tokens (``openai:gpt-4.1-mini@0.4/1.6``); without it the price
    comes from the shipped table (see :mod:`evoforge.proposers.llm.prices`).

    Raises:
        ValueError: with a one-line explanation of the accepted forms.
    """
    forms = ("use openai:MODEL, local:smollm2 or http://HOST:PORT/v1:MODEL, optionally "
             "followed by @IN/OUT dollars per million tokens")
    text, price = split_price(spec)
    prices = {} if price is None else {"price_in": price[0], "price_out": price[1]}
    if text.startswith(("http://", "https://")):
        base, sep, name = text.rpartition(":")
        if not sep or not name or "/" in name or base in ("http", "https"):
            raise ValueError(f"--llm {spec!r}: no model name after the URL; {forms}")
        local_host = any(h in base for h in ("127.0.0.1", "localhost", "[::1]"))
        return with_known_price(ModelSpec(
            name=name, api_base=base, api_key_env=None if local_host else "OPENAI_API_KEY",
            **prices))
    provider, sep, name = text.partition(":")
    if not sep or not name:
        raise ValueError(f"--llm {spec!r}: {forms}")
    if provider == "openai":
        return with_known_price(ModelSpec(name=name, api_key_env="OPENAI_API_KEY", **prices))
    if provider == "local":
        return with_known_price(ModelSpec(name=name, api_base="local", max_concurrency=1,
                                          timeout=600.0, max_tokens=512, **prices))
    raise ValueError(f"--llm {spec!r}: unknown provider {provider!r}; {forms}")


def specs_from_config(config: RunConfig) -> list[ModelSpec]:
    """The models of the config's ``llm`` section (evoforge's keys and OpenEvolve's)."""
    llm = config.llm
    defaults = {k: v for k, v in (llm.model_extra or {}).items()
                if k in ("temperature", "max_tokens", "timeout")}
    # the section's value reaches every model; without one the run loop's look-ahead
    # decides how many requests are in flight, and a model takes up to MODEL_REQUESTS
    defaults["max_concurrency"] = llm.max_concurrency or MODEL_REQUESTS
    specs = []
    for model in llm.models:
        data = {**defaults, **model.model_dump(exclude_none=True)}
        data.pop("api_key", None)  # keys come from the environment, never from files
        allowed = set(ModelSpec.model_fields)
        data = {k: v for k, v in data.items() if k in allowed}
        if "api_key_env" not in data:
            base = str(data.get("api_base") or "")
            local = base == "local" or any(h in base for h in ("127.0.0.1", "localhost"))
            data["api_key_env"] = None if local else "OPENAI_API_KEY"
        specs.append(with_known_price(ModelSpec(**data)))
    return specs
