"""Repeated work in a stored run: evaluations that scored exactly as an earlier one.

A functional duplicate is caught by the probe and not evaluated; a program that behaves
like an earlier one on the real instances but not on the probe calls is evaluated in
full. Scores equal to six decimals are a proxy for that (two different packings may
also tie). Prints, per run of the database, the ok evaluations, how many of them repeat
an earlier score, the functional duplicates and the failures.

    python bench/repeats.py evoforge.db [more.db ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evoforge.candidate import Status
from evoforge.storage import SQLStorage


def repeats(db: Path) -> list[dict[str, Any]]:
    """Per run in ``db``: counts of ok, repeated, duplicate and failed candidates."""
    storage = SQLStorage(f"sqlite:///{db}", read_only=True)
    rows: list[dict[str, Any]] = []
    try:
        for run in storage.list_runs():
            seen: set[float] = set()
            counts = {"ok": 0, "repeats": 0, "duplicates": 0, "failed": 0}
            for cand in storage.iter_candidates(run.id):
                if cand.status == Status.DUPLICATE:
                    counts["duplicates"] += 1
                elif cand.status != Status.OK or cand.score is None:
                    counts["failed"] += 1
                else:
                    counts["ok"] += 1
                    key = round(cand.score, 6)
                    counts["repeats"] += key in seen
                    seen.add(key)
            rows.append({"run": run.name, **counts})
    finally:
        storage.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("databases", type=Path, nargs="+")
    args = parser.parse_args()
    for db in args.databases:
        for row in repeats(db):
            ok, rep = int(row["ok"]), int(row["repeats"])
            total = ok + int(row["duplicates"]) + int(row["failed"])
            waste = total - ok
            print(f"{db} {row['run']}: {ok} ok, {rep} repeat an earlier score "
                  f"({100 * rep / max(ok, 1):.0f} %), {row['duplicates']} duplicates, "
                  f"{row['failed']} failed; waste {100 * waste / max(total, 1):.1f} %, "
                  f"with repeats {100 * (waste + rep) / max(total, 1):.1f} %")


if __name__ == "__main__":
    main()
