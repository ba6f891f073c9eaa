"""Transaction scheduling: the order in which a batch of conflicting transactions runs.

The evaluator calls ``schedule(durations, reads, writes)`` once per workload and
simulates the order it returns: each transaction starts as soon as every
earlier-ordered transaction it conflicts with (one of the two writes a key the
other reads or writes) has finished; everything else runs in parallel. The goal
is a short makespan.

``schedule`` (fixed) builds the order greedily: at each step it computes, for
every transaction not yet ordered, the features below and appends the one that
``priority`` scores highest (scores are rounded to 6 decimals; ties go to the
lowest transaction id). ``priority`` gets one entry per remaining transaction,
in increasing id order:

- ``start``: the time it would start if appended now;
- ``duration``: its duration;
- ``makespan``: the finish time of the schedule so far (a number, not an array);
- ``contention``: the total duration of the remaining transactions it conflicts with;
- ``gap``: idle time it would leave on its keys: the sum, over its keys, of
  ``start`` minus the time that key became free for it;
- ``tid``: its id (as a float).

It must return one score per entry (no NaN; +-inf is allowed). A priority that
samples should draw from ``RNG``, seeded once per evaluation, so that scores are
reproducible.
"""

import numpy as np

RNG = np.random.default_rng(0)


# EVOLVE-BLOCK-START
def priority(start, duration, makespan, contention, gap, tid):
    """A random order (from the seeded RNG, so the score is reproducible)."""
    return RNG.random(len(tid))
# EVOLVE-BLOCK-END


def schedule(durations: list[int], reads: list[list[int]], writes: list[list[int]]) -> list[int]:
    """Order the transactions greedily by ``priority``; returns a permutation of the ids."""
    n = len(durations)
    num_keys = 1 + max([k for keys in reads + writes for k in keys], default=0)
    free = num_keys  # a sentinel key that is always free
    dur = np.asarray(durations, dtype=float)
    read_keys = np.full((n, max(1, max(map(len, reads), default=0))), free)
    write_keys = np.full((n, max(1, max(map(len, writes), default=0))), free)
    writers: list[list[int]] = [[] for _ in range(num_keys)]
    users: list[list[int]] = [[] for _ in range(num_keys)]
    for t in range(n):
        read_keys[t, : len(reads[t])] = reads[t]
        write_keys[t, : len(writes[t])] = writes[t]
        for k in writes[t]:
            writers[k].append(t)
        for k in list(reads[t]) + list(writes[t]):
            users[k].append(t)
    conflicts = np.zeros((n, n), dtype=bool)
    for k in range(num_keys):
        if writers[k]:
            conflicts[np.ix_(writers[k], users[k])] = True
    conflicts |= conflicts.T
    np.fill_diagonal(conflicts, False)
    contention = np.where(conflicts, dur, 0.0).sum(axis=1)
    real_read = read_keys != free
    real_write = write_keys != free
    write_end = np.zeros(num_keys + 1)
    read_end = np.zeros(num_keys + 1)
    remaining = np.ones(n, dtype=bool)
    makespan = 0.0
    order: list[int] = []
    for _ in range(n):
        ids = np.flatnonzero(remaining)
        ready_read = write_end[read_keys[ids]]
        ready_write = np.maximum(write_end, read_end)[write_keys[ids]]
        start = np.maximum(ready_read.max(axis=1), ready_write.max(axis=1))
        gap = ((start[:, None] - ready_read) * real_read[ids]).sum(axis=1) + (
            (start[:, None] - ready_write) * real_write[ids]
        ).sum(axis=1)
        scores = np.asarray(
            priority(start, dur[ids], makespan, contention[ids], gap, ids.astype(float)),
            dtype=float,
        )
        if scores.shape != ids.shape:
            raise ValueError(
                f"priority returned shape {scores.shape} for {len(ids)} transactions; "
                "return one score per transaction"
            )
        if np.isnan(scores).any():
            raise ValueError("priority returned NaN")
        pick = int(np.argmax(np.round(scores, 6)))
        t = int(ids[pick])
        finish = start[pick] + dur[t]
        write_end[write_keys[t]] = finish
        read_end[read_keys[t]] = np.maximum(read_end[read_keys[t]], finish)
        write_end[free] = read_end[free] = 0.0
        makespan = max(makespan, finish)
        remaining[t] = False
        contention -= conflicts[:, t] * dur[t]
        order.append(t)
    return order
