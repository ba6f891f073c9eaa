"""Job-shop scheduling: score the operations competing for a machine.

A fixed Giffler-Thompson builder constructs the schedule. At each step it finds
the unscheduled operation that can complete first; the operations waiting for
that machine which could start before that time form the conflict set, and the
builder calls ``priority(...)`` with one entry per operation of the conflict set:

    p          processing time of the operation
    work_left  remaining work of its job, this operation included
    ops_left   remaining operations of its job, this operation included
    est        earliest time the operation can start (job and machine ready)
    next_p     processing time of the job's next operation (0 if none)
    next_load  unscheduled work on the machine of the job's next operation (0 if none)

All are float arrays of the same length. The operation with the highest score
is scheduled next, as early as possible (scores are rounded to 6 decimals; ties
go to the lowest job index).
"""

import numpy as np  # noqa: F401  (for evolved rules)


# EVOLVE-BLOCK-START
def priority(p, work_left, ops_left, est, next_p, next_load):
    """Shortest processing time (SPT): run the shortest operation first."""
    return -p
# EVOLVE-BLOCK-END
