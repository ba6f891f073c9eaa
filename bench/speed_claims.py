"""What the speed-scored problems claim about their baselines, measured (not unit-tested).

hamming, ppr and max_coverage score a program by its speedup over a reference. Their
READMEs state an order of the baselines (a naive program well below 1, the reference
about 1, a faster one above it) and that one mutation of the initial program is
faster (hamming: the window count by ``sum(map(ne, ...))``; ppr: a looser tolerance).
Those are timings, which move with the machine's load, so they are measured here, each
program's train score the median of ``--repeats`` evaluations taken in turns::

    nice -n 10 .venv/bin/python bench/speed_claims.py [--repeats 3]

Prints one JSON object (train ``combined_score`` medians per problem and program, and
the ratios the READMEs speak of) and writes bench/out/speed_claims.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PROBLEMS = HERE.parent / "evoforge" / "problems"


def _evaluator(problem: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_{problem}_claims",
                                                  PROBLEMS / problem / "evaluator.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variant(problem: str, old: str, new: str, folder: Path) -> Path:
    """The initial program with one edit (the mutation a README speaks of)."""
    text = (PROBLEMS / problem / "initial_program.py").read_text()
    assert text.count(old) == 1, f"{problem}: {old!r} is not in the initial program once"
    path = folder / f"{problem}_variant.py"
    path.write_text(text.replace(old, new))
    return path


def _medians(problem: str, programs: dict[str, Path], repeats: int) -> dict[str, float]:
    ev = _evaluator(problem)
    scores: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):  # in turns, so a burst of load hits every program alike
        for name, path in programs.items():
            scores[name].append(float(ev.evaluate(str(path))["combined_score"]))
    return {name: round(statistics.median(values), 4) for name, values in scores.items()}


def measure(repeats: int = 3) -> dict[str, Any]:
    """Median train scores and the ratios the problems' READMEs state."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = {p: PROBLEMS / p / "baselines" for p in ("hamming", "ppr", "max_coverage")}
        hamming = _medians("hamming", {
            "naive_loops": base["hamming"] / "naive_loops.py",
            "numpy_sliding": base["hamming"] / "numpy_sliding.py",
            "bitpacked_pairs": base["hamming"] / "bitpacked_pairs.py",
            "initial with sum(map(ne, ...))": _variant(
                "hamming", "sum(1 for j in range(len(pattern)) if window[j] != pattern[j])",
                "sum(map(ne, window, pattern))", folder)}, repeats)
        ppr = _medians("ppr", {
            "python_power": base["ppr"] / "python_power.py",
            "numpy_power": base["ppr"] / "numpy_power.py",
            "numpy_bound_stop": base["ppr"] / "numpy_bound_stop.py",
            "initial with TOL_DIGITS = 5": _variant("ppr", "TOL_DIGITS = 10", "TOL_DIGITS = 5",
                                                    folder)}, repeats)
        coverage = _medians("max_coverage", {
            p.stem: p for p in sorted(base["max_coverage"].glob("*.py"))}, repeats)
    return {
        "repeats": repeats,
        "hamming": hamming,
        "ppr": ppr,
        "max_coverage": coverage,
        "ratios": {
            "hamming bitpacked / sliding": round(
                hamming["bitpacked_pairs"] / hamming["numpy_sliding"], 2),
            "hamming map mutation / naive": round(
                hamming["initial with sum(map(ne, ...))"] / hamming["naive_loops"], 2),
            "ppr bound_stop / numpy_power": round(
                ppr["numpy_bound_stop"] / ppr["numpy_power"], 2),
            "ppr TOL_DIGITS 5 / python_power (the initial's 10)": round(
                ppr["initial with TOL_DIGITS = 5"] / ppr["python_power"], 2),
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    results = measure(args.repeats)
    print(json.dumps(results, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "speed_claims.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
