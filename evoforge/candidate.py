"""The candidate record shared by the loop, the archive, the proposers and storage."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of a proposal."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Candidate:
    """A proposed program and what became of it.

    Attributes:
        id: storage id (unique across runs in one storage).
        seq: proposal index within the run, 0 for the initial program.
        island: the island it was proposed for.
        parent_ids: ids of the parents (empty for the initial program).
        operator: what produced it ("initial", a mutation operator, ...).
        code: the full program text, exactly as evaluated.
        code_hash: hash of the normalized AST (see :func:`normalized_hash`).
        status: see :class:`Status`.
        score: the objective metric as reported (None unless ok).
        fitness: the score oriented so that higher is better (None unless ok).
        metrics: all metrics the evaluator returned.
        features: archive feature values.
        artifacts: evaluator artifacts, captured output.
        error: why it failed, for failed and timeout candidates.
        duplicate_of: the earlier candidate's id, for duplicates.
        eval_seconds: wall-clock seconds of the evaluation.
        functional_hash: hash of the outputs on the problem's probe inputs, if probed.
        stages: per cascade stage: its metrics and seconds.
        model: the model that wrote it (LLM proposals).
        cost: dollars spent on its proposal.
    """

    id: int
    seq: int
    island: int
    parent_ids: tuple[int, ...]
    operator: str
    code: str
    code_hash: str
    status: Status = Status.PENDING
    score: float | None = None
    fitness: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duplicate_of: int | None = None
    eval_seconds: float | None = None
    functional_hash: str | None = None
    stages: list[dict[str, Any]] | None = None
    model: str | None = None
    cost: float | None = None


def normalized_hash(code: str) -> str:
    """Hash of the program's AST, blind to comments, blank lines and formatting.

    Code that does not parse is hashed as text.
    """
    try:
        key = ast.dump(ast.parse(code), annotate_fields=False, include_attributes=False)
    except SyntaxError:
        key = code
    return hashlib.sha256(key.encode()).hexdigest()[:32]
