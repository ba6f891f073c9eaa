"""Sandboxed evaluation of candidate programs."""

from evoforge.evaluation.result import EvaluationResult, install_openevolve_shim

__all__ = ["EvaluationResult", "install_openevolve_shim"]
