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
