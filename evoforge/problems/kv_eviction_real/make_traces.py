"""Record the real attention traces of kv_eviction_real from SmolLM2-135M.

    python evoforge/problems/kv_eviction_real/make_traces.py            # traces_*.npz
    python evoforge/problems/kv_eviction_real/make_traces.py --texts    # texts.yaml too

``texts.yaml`` holds the documents (prose from Python's own documentation, see
``TEXTS_LICENCE.md``); ``--texts`` rebuilds it from the ``pydoc_data`` module of the
running Python, whose text changes between Python versions, so it is shipped rather
than rebuilt by default. For each document the first ``TOKENS`` tokens go through
the model once (teacher forced, float32, deterministic algorithms) and, for each
recorded layer and KV head, the full causal attention rows (the mean over the KV
head's 3 query heads, see model.py) and the value vectors are stored as float16 in
a compressed ``traces_<split>.npz``. Train and test come from different documents.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
# the sibling, loaded by path under a private name (a problem folder is no package)
kv_model = kit.load_module(HERE / "model.py", "_kv_eviction_real_model")

TOKENS = 384
"""Tokens per recorded sequence."""
LAYERS = (0, 6, 12, 18, 24, 29)
"""Recorded layers of the 30 (first, last, and evenly between), each with its 3 KV heads."""
DOCUMENTS = {
    # pydoc_data topic keys; separate chapters, so no text is shared between the splits
    "train": ("execmodel", "types"),
    "test": ("compound", "comparisons", "specialnames"),
}
KEEP_CHARS = 4000
"""Characters kept per document (enough for TOKENS tokens and for the perplexity check)."""


def clean(text: str) -> str:
    """The prose of a pydoc topic: paragraphs joined into lines; headings' underlines,
    indented blocks (code, grammar) and blank runs removed."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith((" ", "\t")) \
                or re.fullmatch(r"[*=\-~^]{3,}", line.strip()):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def build_texts() -> dict[str, dict[str, str]]:
    """The documents of each split, from this Python's pydoc_data."""
    from pydoc_data.topics import topics

    return {split: {name: clean(topics[name])[:KEEP_CHARS] for name in names}
            for split, names in DOCUMENTS.items()}


def write_texts(texts: dict[str, dict[str, str]]) -> None:
    header = ("# Documents for kv_eviction_real, from Python's documentation (pydoc_data.topics\n"
              f"# of Python {sys.version.split()[0]}); licence: TEXTS_LICENCE.md.\n"
              "# Rebuilt by make_traces.py --texts.\n")
    class Literal(yaml.SafeDumper):
        """Multi-line strings as literal blocks, readable in the file."""

    Literal.add_representer(str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))
    body = yaml.dump(texts, Dumper=Literal, sort_keys=False, allow_unicode=True, width=88)
    kv_model.TEXTS.write_text(header + body, encoding="utf-8")


def record(loaded: kv_model.LoadedModel, split: str) -> dict[str, np.ndarray]:
    """The arrays of one split's ``.npz``."""
    texts = kv_model.read_texts()[split]
    attn, values, tokens = [], [], []
    for text in texts.values():
        ids = loaded.tokens(text, TOKENS)
        _, recorded = loaded.forward(ids, record_layers=LAYERS)
        attn.append(np.concatenate([recorded[layer][0] for layer in LAYERS]))
        values.append(np.concatenate([recorded[layer][1] for layer in LAYERS]))
        tokens.append(ids)
    return {
        "names": np.array(list(texts)),
        "tokens": np.array(tokens, dtype=np.int32),
        "layers": np.array(LAYERS, dtype=np.int16),
        "attn": np.stack(attn).astype(np.float16),       # (seq, layers*kv_heads, n, n)
        "values": np.stack(values).astype(np.float16),   # (seq, layers*kv_heads, n, head_dim)
    }


def main(argv: list[str] | None = None) -> None:
    """Write texts.yaml (with --texts) and traces_train.npz, traces_test.npz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", action="store_true", help="rebuild texts.yaml first")
    args = parser.parse_args(argv)
    if args.texts:
        write_texts(build_texts())
    started = time.perf_counter()
    loaded = kv_model.load_model()
    print(f"model loaded on {loaded.device} in {time.perf_counter() - started:.1f} s")
    for split in ("train", "test"):
        started = time.perf_counter()
        arrays = record(loaded, split)
        path = HERE / f"traces_{split}.npz"
        np.savez_compressed(path, **arrays)   # type: ignore[arg-type]
        print(f"{path.name}: {arrays['attn'].shape[0]} sequences, "
              f"{path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
