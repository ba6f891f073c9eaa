"""The local model's proposals on bin packing: apply and improvement rate per mode.

Asks the real local model (``local:smollm2``) for N proposals in each mode from the
problem's initial program (crossover: with the best-fit baseline as the second
parent), evaluates every applied one on the training split, and prints per mode:
proposals, applied, evaluated ok, improved on the parent, seconds per proposal and
completion tokens per second, plus the replies with ``-v``. One run's numbers;
the machine's load changes the seconds.

    python bench/llm_local.py --n 4 [--modes function,expression,crossover] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.config import LLMConfig
from evoforge.problem import load_problem
from evoforge.problem.library import objective, score_program
from evoforge.proposers.llm.backend import Backend
from evoforge.proposers.llm.proposer import SMALL_MODES, LLMProposer, parse_llm_spec


def _candidate(cid: int, code: str, score: float) -> Candidate:
    return Candidate(id=cid, seq=cid, island=0, parent_ids=(), operator="initial", code=code,
                     code_hash=normalized_hash(code), status=Status.OK, score=score,
                     fitness=score, metrics={"combined_score": score})


def main() -> None:
    """Measure and print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="proposals per mode")
    parser.add_argument("--modes", default=",".join(SMALL_MODES))
    parser.add_argument("--problem", default="bin_packing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-v", "--verbose", action="store_true", help="print the replies")
    args = parser.parse_args()

    problem = load_problem(args.problem)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    llm = LLMConfig.model_validate({"modes": modes, "mutation_operators": False})
    config = problem.config.model_copy(update={"llm": llm})
    spec = parse_llm_spec("local:smollm2")
    backend = Backend([spec])
    proposer = LLMProposer(problem.template, config, [spec], backend, problem.path)

    def train(code: str) -> float | None:
        outcome = score_program(problem, code, "evaluate", timeout=120)
        return objective(problem, outcome.metrics) if outcome.status == "ok" else None

    initial_score = train(problem.initial_program)
    assert initial_score is not None
    parent = _candidate(1, problem.initial_program, initial_score)
    donors = [p for name, p in sorted(problem.baselines.items()) if name != "first_fit"]
    other = None
    if donors:
        code = donors[0].read_text()
        other = _candidate(2, code, train(code) or initial_score)

    async def ask(mode: str, rng: random.Random) -> tuple[Any, float]:
        start = time.perf_counter()
        proposal = await proposer._ask(f"llm:{mode}", spec.label, parent,
                                       [other] if other else [], other, rng)
        return proposal, time.perf_counter() - start

    async def run_all() -> dict[str, Any]:
        await backend.check()
        table: dict[str, Any] = {}
        for mode in modes:
            row = {"proposals": 0, "applied": 0, "ok": 0, "improved": 0, "seconds": 0.0,
                   "completion_tokens": 0, "reasons": {}}
            for i in range(args.n):
                proposal, seconds = await ask(mode, random.Random(f"{args.seed}:{mode}:{i}"))
                row["proposals"] += 1
                row["seconds"] += seconds
                row["completion_tokens"] += proposal.completion_tokens
                if proposal.rejected is None:
                    row["applied"] += 1
                    score = await asyncio.to_thread(train, proposal.code)
                    if score is not None:
                        row["ok"] += 1
                        row["improved"] += int(score > parent.score)
                    outcome = f"applied, score {score}"
                else:
                    reason = proposal.rejected.split(":")[:2]
                    key = ":".join(reason).strip()
                    row["reasons"][key] = row["reasons"].get(key, 0) + 1
                    outcome = proposal.rejected
                if args.verbose:
                    print(f"--- {mode} {i}: {seconds:.1f} s, {outcome}\n"
                          f"{proposal.meta.get('reply', '')}\n", flush=True)
            table[mode] = row
        return table

    table = asyncio.run(run_all())
    total = {k: sum(r[k] for r in table.values())
             for k in ("proposals", "applied", "ok", "improved", "seconds",
                       "completion_tokens")}
    print(f"local model on {args.problem}, parent score {initial_score:.4f}, "
          f"{args.n} proposals per mode, device {backend.stats()[spec.label]['device']}")
    print(f"{'mode':<12}{'applied':>10}{'ok':>6}{'improved':>10}{'s/proposal':>12}"
          f"{'tokens/s':>10}")
    for mode, r in [*table.items(), ("all", total)]:
        print(f"{mode:<12}{r['applied']:>4}/{r['proposals']:<5}{r['ok']:>6}{r['improved']:>10}"
              f"{r['seconds'] / r['proposals']:>12.1f}"
              f"{r['completion_tokens'] / r['seconds']:>10.1f}")
    print(json.dumps({"modes": table, "all": total}))


if __name__ == "__main__":
    main()
