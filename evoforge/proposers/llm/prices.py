"""Model prices: from the config, from ``--llm NAME@IN/OUT``, or from a shipped table.

The table (``prices.yaml`` next to this module) holds the list prices of common
remote models in US dollars per million prompt / completion tokens, with the date
they were taken. It is the last resort: a price in the config or on the command
line always wins. The built-in local model costs nothing.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from evoforge.proposers.llm.types import ModelSpec

TABLE = Path(__file__).resolve().parent / "prices.yaml"

PRICE_RE = re.compile(r"^(?P<price_in>\d+(?:\.\d*)?|\.\d+)/(?P<price_out>\d+(?:\.\d*)?|\.\d+)$")
"""``IN/OUT`` after the ``@`` of an ``--llm`` spec: dollars per million tokens."""


@functools.cache
def price_table() -> tuple[str, dict[str, tuple[float, float]]]:
    """The shipped table: (its date, {model name: (price_in, price_out)})."""
    data: dict[str, Any] = yaml.safe_load(TABLE.read_text()) or {}
    models = {str(name): (float(p["price_in"]), float(p["price_out"]))
              for name, p in (data.get("models") or {}).items()}
    return str(data.get("date", "undated")), models


def split_price(spec: str) -> tuple[str, tuple[float, float] | None]:
    """Split ``--llm`` text into the model part and its ``@IN/OUT`` price, if any.

    Raises:
        ValueError: an ``@`` followed by something that is not ``IN/OUT``.
    """
    head, sep, tail = spec.rpartition("@")
    if not sep:
        return spec, None
    match = PRICE_RE.match(tail)
    if match is None:
        if "/" in tail or tail.replace(".", "").isdigit():
            raise ValueError(f"--llm {spec!r}: the price after '@' must be IN/OUT, US dollars "
                             "per million prompt/completion tokens (e.g. @0.4/1.6)")
        return spec, None  # an '@' that is part of the name or URL
    return head, (float(match["price_in"]), float(match["price_out"]))


def with_known_price(spec: ModelSpec) -> ModelSpec:
    """``spec`` with prices filled in where it has none: 0 for the local model, else
    the shipped table's entry for its name (unchanged when the table has none)."""
    if spec.price_in is not None and spec.price_out is not None:
        return spec
    if spec.api_base == "local":
        return spec.model_copy(update={"price_in": 0.0, "price_out": 0.0})
    known = price_table()[1].get(spec.name)
    if known is None:
        return spec
    return spec.model_copy(update={"price_in": spec.price_in if spec.price_in is not None
                                   else known[0],
                                   "price_out": spec.price_out if spec.price_out is not None
                                   else known[1]})


def unpriced(specs: list[ModelSpec]) -> list[str]:
    """Labels of the models whose cost cannot be known."""
    return [s.label for s in specs if s.cost(0, 0) is None]
