"""A session's limits, resolved once from the stored run, its config and the command line.

The command line wins over config.yaml; what must outlive the session (the budget, the
cost and token caps) is stored with the run, so ``resume`` keeps it unless it is given
again. Everything downstream (the loop, the stop rule, the look-ahead) reads only the
resolved :class:`RunSpec`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from evoforge.config import RunConfig
from evoforge.run.events import RunError
from evoforge.storage.base import RunRecord, Storage

__all__ = ["RunSpec", "check_limits"]


def check_limits(*, max_time: float | None = None, max_cost: float | None = None,
                 max_tokens: int | None = None) -> None:
    """Refuse a session limit out of range, named as its command-line flag.

    Raises:
        RunError: ``max_time`` not above 0, ``max_cost`` below 0 or ``max_tokens`` below 1.
    """
    if max_cost is not None and max_cost < 0:
        raise RunError(f"--max-cost must be at least 0, not {max_cost:g}")
    if max_tokens is not None and max_tokens < 1:
        raise RunError(f"--max-tokens must be at least 1, not {max_tokens}")
    if max_time is not None and max_time <= 0:
        raise RunError(f"--time must be more than 0 seconds, not {max_time:g}")


class RunSpec(BaseModel):
    """The limits of one session of a run.

    Attributes:
        budget: evaluations for the whole run (initial included).
        workers: concurrent evaluations.
        max_time: seconds for this session, or None.
        target: stop when the best objective reaches this, or None.
        max_cost: dollars the models may cost the run, or None.
        max_tokens: model tokens (prompt + completion) for the run, or None.
    """

    model_config = ConfigDict(frozen=True)

    budget: int = Field(ge=1)
    workers: int = Field(ge=1)
    max_time: float | None = Field(default=None, gt=0)
    target: float | None = None
    max_cost: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)

    @classmethod
    def of(cls, run: RunRecord, config: RunConfig, *, workers: int | None = None,
           max_time: float | None = None, target: float | None = None,
           max_cost: float | None = None, max_tokens: int | None = None) -> RunSpec:
        """The given values over the config's (``workers``, ``max_time``, ``target``,
        ``llm.max_cost``, ``llm.max_total_tokens``); the budget is the run's.

        Raises:
            RunError: a value out of range (named as its command-line flag).
        """
        check_limits(max_time=max_time, max_cost=max_cost, max_tokens=max_tokens)
        return cls(
            budget=run.budget, workers=workers or config.workers,
            max_time=max_time if max_time is not None else config.max_time,
            target=target if target is not None else config.target,
            max_cost=max_cost if max_cost is not None else config.llm.max_cost,
            max_tokens=max_tokens if max_tokens is not None else config.llm.max_total_tokens)

    def store_caps(self, storage: Storage, run: RunRecord, config: RunConfig) -> RunConfig:
        """``config`` with this spec's cost and token caps, stored with the run when they
        changed (so that a later ``resume`` keeps them)."""
        llm = config.llm
        if (llm.max_cost, llm.max_total_tokens) == (self.max_cost, self.max_tokens):
            return config
        llm = llm.model_copy(update={"max_cost": self.max_cost,
                                     "max_total_tokens": self.max_tokens})
        config = config.model_copy(update={"llm": llm})
        storage.update_run(run.id, config=config.model_dump(mode="json"))
        return config
