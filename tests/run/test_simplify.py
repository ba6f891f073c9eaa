"""The simplification pass proposes no statement deletion that can only fail."""

from __future__ import annotations

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.problem import load_problem
from evoforge.problem.blocks import extract_regions
from evoforge.proposers.mutation.operators import statement_deletions
from evoforge.run.simplify import Simplifier


def _fails_on_a_name(code: str) -> bool:
    """Whether building the packing raises NameError (UnboundLocalError included)."""
    namespace: dict[str, object] = {"__name__": "candidate"}
    try:
        exec(compile(code, "<candidate>", "exec"), namespace)  # noqa: S102 - our own code
        namespace["construct_packing"]()  # type: ignore[operator]
    except NameError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is not what the check is for
        return False
    return False


def test_deletions_that_leave_a_name_unbound_are_not_proposed() -> None:
    problem = load_problem("circle_packing")
    template = problem.template
    code = problem.initial_program
    every = [template.render(r) for r in statement_deletions(extract_regions(template, code))]
    failing = {c for c in every if _fails_on_a_name(c)}
    assert failing  # e.g. RELAX_ROUNDS' or outer_count's only assignment deleted
    base = Candidate(id=7, seq=7, island=0, parent_ids=(), operator="tune", code=code,
                     code_hash=normalized_hash(code), status=Status.OK, fitness=1.0,
                     functional_hash="f")
    simplifier = Simplifier(template, every=1, enabled=True)
    simplifier.observe(base)
    proposed = []
    while (step := simplifier.next(base)) is not None:
        assert step[0] is base
        proposed.append(step[1])
    assert proposed
    assert set(proposed) == set(every) - failing
