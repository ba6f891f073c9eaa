"""Prompts for the LLM proposer, built from template files a problem may override.

Templates are plain text files with ``$name`` placeholders (``string.Template``, so
braces in code need no escaping). The built-in ones live next to this module in
``templates/``; a problem overrides any of them with a file of the same name in its
own ``prompts/`` folder.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from string import Template
from typing import Any

from evoforge.candidate import Candidate

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAMES = ("system", "context", "diff", "rewrite", "crossover", "plan", "implement",
         "small_system", "small_function", "small_expression", "small_crossover")

# how much of each artifact reaches the prompt
_ARTIFACT_CHARS = 1500
# ... and of the program's docstring and the feedback in a small model's prompt
_SUMMARY_CHARS = 700
_SMALL_FEEDBACK_CHARS = 500
_FEEDBACK_KEYS = ("feedback", "profile", "error", "traceback", "stderr")


def _metrics_text(cand: Candidate) -> str:
    if not cand.metrics:
        return "(none)"
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(cand.metrics.items()))


def _tail(value: Any, chars: int = _ARTIFACT_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= chars else "..." + text[-chars:]


class PromptBuilder:
    """Builds chat messages for each proposal mode.

    Args:
        problem_dir: the problem folder (its ``prompts/`` overrides templates).
        system_message: the problem's system message (config ``system_message``).
        objective: the objective metric's name.
        maximize: its direction.
    """

    def __init__(self, problem_dir: Path | None, system_message: str | None, objective: str,
                 maximize: bool) -> None:
        self.templates: dict[str, Template] = {}
        for name in NAMES:
            override = problem_dir / "prompts" / f"{name}.txt" if problem_dir else None
            path = override if override is not None and override.exists() else (
                TEMPLATES / f"{name}.txt")
            self.templates[name] = Template(path.read_text())
        self.system_message = system_message or ""
        self.objective = objective
        self.direction = "higher is better" if maximize else "lower is better"

    def _fill(self, name: str, **values: Any) -> str:
        base = {"objective": self.objective, "direction": self.direction}
        return self.templates[name].safe_substitute(base, **values).strip() + "\n"

    def context(self, parent: Candidate, inspirations: list[Candidate],
                failures: list[tuple[str, str]]) -> str:
        """The shared part: parent program, its metrics and feedback, examples, failures."""
        feedback = ""
        notes = [f"{key}:\n{_tail(parent.artifacts[key])}" for key in _FEEDBACK_KEYS
                 if parent.artifacts.get(key)]
        if notes:
            feedback = "\n# Feedback from the evaluator on this program\n" + "\n".join(notes) + "\n"
        examples = ""
        if inspirations:
            parts = [f"## Program {i + 1} ({_metrics_text(c)})\n```python\n{c.code}\n```"
                     for i, c in enumerate(inspirations)]
            examples = ("\n# Other programs of the archive, for inspiration\n"
                        + "\n".join(parts) + "\n")
        failed = ""
        if failures:
            parts = [f"- {reason}\n```\n{_tail(snippet, 600)}\n```" for snippet, reason in failures]
            failed = "\n# Recent attempts that failed, and why\n" + "\n".join(parts) + "\n"
        return self._fill("context", code=parent.code, metrics=_metrics_text(parent),
                          feedback=feedback, inspirations=examples, failures=failed)

    def _objective_text(self, cand: Candidate) -> str:
        value = (cand.metrics or {}).get(self.objective)
        if isinstance(value, float):
            return f"{self.objective}={value:.6g}"
        return f"{self.objective}={value}" if value is not None else "not scored yet"

    def small(self, mode: str, parent: Candidate, function: str, *,
              other: Candidate | None = None, other_function: str | None = None,
              prefix: str | None = None) -> list[dict[str, str]]:
        """Short messages for a small model: one function, no other programs.

        Args:
            mode: ``function``, ``expression`` or ``crossover``.
            parent: the parent (its metrics, docstring and profile/error feedback).
            function: the parent's function to improve (its source).
            other: for crossover, the second parent.
            other_function: for crossover, the second parent's version of the function.
            prefix: the start of the answer (a prefill the local model continues).
        """
        notes = [f"{key}: {_tail(parent.artifacts[key], _SMALL_FEEDBACK_CHARS)}"
                 for key in ("profile", "error") if parent.artifacts.get(key)]
        feedback = ("\n".join(notes) + "\n") if notes else ""
        params, current = _signature(function)
        user = self._fill(f"small_{mode}", summary=_summary(parent.code),
                          params=params, current=current,
                          metrics=self._objective_text(parent), feedback=feedback,
                          function=function.rstrip("\n"),
                          other_function=(other_function or "").rstrip("\n"),
                          other_metrics=self._objective_text(other) if other else "")
        system = self._fill("small_system", system_message=self.system_message)
        out = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if prefix:
            out.append({"role": "assistant", "content": prefix})
        return out

    def messages(self, mode: str, parent: Candidate, inspirations: list[Candidate],
                 failures: list[tuple[str, str]], *, other: Candidate | None = None,
                 idea: str | None = None, num_ideas: int = 4) -> list[dict[str, str]]:
        """Chat messages for ``mode``: diff, rewrite, crossover, plan or implement."""
        context = self.context(parent, inspirations, failures)
        if mode == "crossover":
            assert other is not None
            user = self._fill("crossover", context=context, other_code=other.code,
                              other_metrics=_metrics_text(other))
        elif mode == "implement":
            user = self._fill("implement", context=context, idea=idea or "")
        elif mode == "plan":
            user = self._fill("plan", context=context, num_ideas=num_ideas)
        else:
            user = self._fill(mode, context=context)
        system = self._fill("system", system_message=self.system_message)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _summary(code: str) -> str:
    """The program's module docstring (what the function is for), shortened."""
    try:
        doc = ast.get_docstring(ast.parse(code)) or ""
    except SyntaxError:
        doc = ""
    return doc if len(doc) <= _SUMMARY_CHARS else doc[:_SUMMARY_CHARS] + "..."


def _signature(function: str) -> tuple[str, str]:
    """A function's parameter names (comma-separated) and its final return line."""
    try:
        node = ast.parse(function).body[0]
    except (SyntaxError, IndexError):
        return "", ""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return "", ""
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    tail = node.body[-1]
    current = ""
    if isinstance(tail, ast.Return) and tail.value is not None:
        current = "return " + ast.unparse(tail.value)
    return ", ".join(names), current


def parse_ideas(text: str) -> list[str]:
    """The numbered ideas of a plan reply (``1. ...``, ``2) ...``), in order."""
    ideas: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if re.match(r"^\s*(\d+)[.)]\s+", line):
            if current:
                ideas.append(" ".join(current).strip())
            current = [re.sub(r"^\s*\d+[.)]\s+", "", line)]
        elif current and line.strip():
            current.append(line.strip())
    if current:
        ideas.append(" ".join(current).strip())
    return [i for i in ideas if i]
