"""Calls the candidate once, in its own process (evoforge.problem.kit): the split's cost."""

from evoforge.problem import kit


def evaluate(program_path):
    with kit.load_program(program_path, {"f": "f(x)"}) as program:
        return {"combined_score": float(program.f(1.0))}
