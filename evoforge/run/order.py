"""Results used in the order their proposals were made (``ordered_lag``).

With several workers, evaluations finish in an order that depends on timing, and a
loop that uses each result as it arrives proposes from an archive that differs from run
to run. With ``ordered_lag: N`` the loop makes proposal k once the results of the
proposals before k - N + 1 are in, and uses the results strictly in proposal order,
holding back one that finishes before an earlier one. Every proposal then sees the
same run whatever the timing, so a model-free run with a deterministic evaluator is
the same with any number of workers up to N: only its speed differs. The price is a
little idle time when a slow evaluation holds back later ones (N - workers proposals
are kept ready to cover it) and proposals made from a run N results old.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from evoforge.run.events import RunError

__all__ = ["ResultOrder", "check_lag"]

T = TypeVar("T")


def check_lag(lag: int, workers: int, *, with_model: bool, joined: bool) -> None:
    """Refuse an ``ordered_lag`` the run cannot keep.

    Raises:
        RunError: a model writes proposals, the run is joined, or ``lag`` is below
            ``workers``.
    """
    if not lag:
        return
    if with_model:
        raise RunError("ordered_lag applies to model-free runs; with a model, "
                       "llm.reproducible and --workers 1 make a run reproducible")
    if joined:
        raise RunError("ordered_lag cannot be used with --join: the processes' "
                       "results arrive in no fixed order")
    if lag < workers:
        raise RunError(f"ordered_lag {lag} is below the {workers} workers: raise it to at "
                       f"least {workers} (a run is the same for any number of workers up "
                       "to it)")


class ResultOrder(Generic[T]):
    """Holds finished results until every earlier proposal's result is in.

    Proposals are known by a key (the loop uses the candidate's id), so the order does
    not depend on how the loop numbers or dispatches them.

    Args:
        lag: N, the most proposals made and not yet used (at least the workers).
    """

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.held_back = 0  # results that came in before an earlier proposal's
        self._unused: deque[int] = deque()  # keys of proposals made, results not used
        self._held: dict[int, T] = {}

    @property
    def outstanding(self) -> int:
        """Proposals made whose results are not used yet (ready, running or held)."""
        return len(self._unused)

    def room(self) -> bool:
        """Whether one more proposal may be made now."""
        return self.outstanding < self.lag

    def made(self, key: int) -> None:
        """A new proposal; its result is used after those of the ones made before it."""
        self._unused.append(key)

    def finished(self, key: int, result: T) -> None:
        """The result of proposal ``key`` is in."""
        if key != self._unused[0]:
            self.held_back += 1
        self._held[key] = result

    def next_in_order(self) -> T | None:
        """The next result to use (its proposal is the oldest unused one), or None."""
        if not self._unused or self._unused[0] not in self._held:
            return None
        return self._held.pop(self._unused.popleft())

    def drain(self) -> list[T]:
        """Every held result, in proposal order, gaps skipped: the run is stopping and
        a finished evaluation must not be lost."""
        held = [self._held.pop(k) for k in self._unused if k in self._held]
        self._unused.clear()
        return held
