"""Deadline-aware spot scheduling: decide, step by step, where the job runs.

The evaluator calls ``policy(...)`` once per time step with what can be
observed: the step ``t``, the work done so far ``progress`` (steps), the
``job_length`` and ``deadline`` (steps), the restart ``overhead`` (steps),
whether spot capacity is available now, the ``instance`` running now (0 none,
1 spot, 2 on-demand; a spot instance that lost its capacity has been preempted
and shows as 0) and ``overhead_left``, the restart steps it still has to pay
before it makes progress. The answer is IDLE (0), SPOT (1) or ON_DEMAND (2).
Launching an instance, switching type or restarting after a preemption costs
``overhead`` paid steps without progress. Spot costs 0.3 per step, on-demand
1.0, idle nothing.

``policy`` (fixed, below the evolved block) first applies a safety net: once the
slack -- the steps to spare if the job went on-demand from scratch right now --
is used up, it runs on-demand, which always meets the deadline. Otherwise it
asks the two evolved rules, which also get that ``slack``: ``use_spot`` (only
when spot capacity is available) and then ``use_on_demand``; if neither says
yes, the job waits idle.
"""

IDLE, SPOT, ON_DEMAND = 0, 1, 2


# EVOLVE-BLOCK-START
def use_spot(t, progress, job_length, deadline, overhead, spot_available, instance,
             overhead_left, slack):
    """Greedy (Wu et al., NSDI 2024): spot whenever there is capacity."""
    return True


def use_on_demand(t, progress, job_length, deadline, overhead, spot_available, instance,
                  overhead_left, slack):
    """Greedy: without spot, wait; waiting is free but uses up slack.

    Once the slack is gone the safety net in policy() moves the job to
    on-demand for the rest of the run.
    """
    return False
# EVOLVE-BLOCK-END


def policy(t, progress, job_length, deadline, overhead, spot_available, instance,
           overhead_left):
    """Safety net, then the evolved rules.

    ``slack`` is the number of steps that could still be lost: going on-demand
    from scratch now needs ``overhead + job_length - progress`` steps. Any other
    choice loses at most one step of slack, so running on-demand whenever
    ``slack <= 0`` always meets the deadline.
    """
    slack = (deadline - t) - (job_length - progress) - overhead
    if slack <= 0:
        return ON_DEMAND
    args = (t, progress, job_length, deadline, overhead, spot_available, instance,
            overhead_left, slack)
    if spot_available and use_spot(*args):
        return SPOT
    if use_on_demand(*args):
        return ON_DEMAND
    return IDLE
