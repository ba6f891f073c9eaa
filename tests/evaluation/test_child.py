"""The probe that functional hashing runs in a candidate's process (``child.probe``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from evoforge.evaluation.child import probe


def _program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(f"def f(x):\n    return {body}\n")
    return str(path)


def _hash(module: object, path: str) -> str:
    return str(probe(module, path)["artifacts"]["probe_hash"])


def test_probe_key_maps_outputs_before_they_are_hashed(tmp_path: Path) -> None:
    plain = SimpleNamespace(probe_inputs=lambda: [[3.0, 1.0, 2.0], [0.5, -1.0]])
    keyed = SimpleNamespace(probe_inputs=plain.probe_inputs,
                            probe_key=lambda out: sorted(range(len(out)), key=out.__getitem__))
    same = _program(tmp_path, "same", "x")
    scaled = _program(tmp_path, "scaled", "[2 * v + 1 for v in x]")
    reversed_ = _program(tmp_path, "reversed", "[-v for v in x]")
    assert _hash(plain, same) != _hash(plain, scaled)  # raw outputs differ
    assert _hash(keyed, same) == _hash(keyed, scaled)  # their order does not
    assert _hash(keyed, same) != _hash(keyed, reversed_)


def test_a_key_that_raises_hashes_as_the_exception(tmp_path: Path) -> None:
    def key(out: object) -> object:
        if not isinstance(out, list):
            raise ValueError("not a list")
        return out

    module = SimpleNamespace(probe_inputs=lambda: [[1.0]], probe_key=key)
    scalar = _program(tmp_path, "scalar", "1.0")
    raising = _program(tmp_path, "raising", "int('x')")  # raises ValueError itself
    listed = _program(tmp_path, "listed", "x")
    assert _hash(module, scalar) == _hash(module, raising)
    assert _hash(module, scalar) != _hash(module, listed)


def _walk(program: object, start: float, steps: int) -> list[float]:
    """A closed loop: each call's input is the program's previous output."""
    x, seen = start, []
    for _ in range(steps):
        x = program.f(x)  # type: ignore[attr-defined]
        seen.append(x)
    return seen


def test_probe_program_runs_the_program_closed_loop(tmp_path: Path) -> None:
    """An evaluator's probe_program gets the imported program and its result is hashed:
    two programs that agree on the fixed inputs but not on the states their own outputs
    lead to hash alike by probe_inputs and apart by probe_program."""
    fixed = SimpleNamespace(probe_inputs=lambda: [0.0])
    looped = SimpleNamespace(probe_inputs=lambda: [0.0],  # probe_program takes precedence
                             probe_program=lambda program: _walk(program, 0.0, 3))
    step = _program(tmp_path, "step", "x + 1")
    bent = _program(tmp_path, "bent", "x + 1 if x < 1 else x * 3")
    assert _hash(fixed, step) == _hash(fixed, bent)
    assert _hash(looped, step) != _hash(looped, bent)
    assert _hash(looped, step) == _hash(looped, _program(tmp_path, "again", "1 + x"))
    # config arguments still come first: the program is then called on them
    by_config = probe(looped, step, [[0.0]])["artifacts"]["probe_hash"]
    assert by_config == probe(looped, bent, [[0.0]])["artifacts"]["probe_hash"]


def test_a_probe_program_that_raises_hashes_as_the_exception(tmp_path: Path) -> None:
    module = SimpleNamespace(probe_program=lambda program: _walk(program, 0.0, 2))
    zero = _program(tmp_path, "zero", "1 / x")  # ZeroDivisionError on the first call
    later = _program(tmp_path, "later", "1 / (x - 1) if x else 1.0")  # on the second
    typed = _program(tmp_path, "typed", "int('x')")
    assert _hash(module, zero) == _hash(module, later)
    assert _hash(module, zero) != _hash(module, typed)
    assert _hash(module, zero) != _hash(module, _program(tmp_path, "fine", "x + 1"))
