"""The fake OpenAI-compatible endpoint of the peer benchmarks, as its own process.

Runs :class:`evoforge.testing.FakeLLMServer` (requests answered concurrently, one thread
each) with a stand-in model from ``standin.py``, so that its CPU time is counted in no
framework's. Prints one JSON line ``{"base_url": ...}`` when it listens, serves until its
standard input closes (or SIGTERM), then writes its statistics to ``--stats``::

    python bench/peers/server.py --model counter --delay 2
    python bench/peers/server.py --model mutation --seed 1 --broken 0.1 --primitives-from C
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standin import CounterModel, MutationModel  # noqa: E402

from evoforge.testing import FakeLLMServer, RecordedRequest  # noqa: E402


class _LeanServer(FakeLLMServer):
    """Counts requests instead of keeping them, so memory stays flat over long runs."""

    count = 0

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.count += 1


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["counter", "mutation"], default="counter")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--broken", type=float, default=0.1, help="share of broken replies")
    parser.add_argument("--primitives-from", type=Path, default=None,
                        help="an evoforge config.yaml whose mutation.primitives to use")
    parser.add_argument("--stats", type=Path, default=None)
    args = parser.parse_args(argv)
    model: Any
    if args.model == "counter":
        model = CounterModel(args.delay)
    else:
        primitives = None
        if args.primitives_from is not None:
            config = yaml.safe_load(args.primitives_from.read_text()) or {}
            primitives = (config.get("mutation") or {}).get("primitives")
        model = MutationModel(args.seed, args.broken, args.delay, primitives)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    with _LeanServer(model) as server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        done.wait()
        stats = {"requests": server.count, "replies": server.replies_sent,
                 "max_in_flight": server.max_in_flight,
                 "kinds": getattr(model, "sent", None)}
    if args.stats is not None:
        args.stats.write_text(json.dumps(stats))


if __name__ == "__main__":
    main()
