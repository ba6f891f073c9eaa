"""What an evaluator returns, and the shim that lets OpenEvolve evaluators import it."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvaluationResult:
    """Metrics plus free-form artifacts (feedback text, stderr, profiles).

    Attributes:
        metrics: name -> number; the objective is one of them.
        artifacts: name -> text or JSON-able value shown to proposers and users.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, metrics: dict[str, Any]) -> EvaluationResult:
        """Wrap a plain metrics dict."""
        return cls(metrics=dict(metrics))

    def to_dict(self) -> dict[str, Any]:
        """The metrics alone (OpenEvolve's method of the same name)."""
        return dict(self.metrics)

    def has_artifacts(self) -> bool:
        """True when artifacts are present."""
        return bool(self.artifacts)


def install_openevolve_shim() -> bool:
    """Make ``from openevolve.evaluation_result import EvaluationResult`` work.

    Does nothing when the real openevolve package is installed.

    Returns:
        True if the shim was installed.
    """
    if "openevolve" in sys.modules or importlib.util.find_spec("openevolve") is not None:
        return False
    pkg = types.ModuleType("openevolve")
    pkg.__path__ = []  # a package, so submodule imports resolve through sys.modules
    sub = types.ModuleType("openevolve.evaluation_result")
    sub.EvaluationResult = EvaluationResult  # type: ignore[attr-defined]
    pkg.evaluation_result = sub  # type: ignore[attr-defined]
    sys.modules["openevolve"] = pkg
    sys.modules["openevolve.evaluation_result"] = sub
    return True
