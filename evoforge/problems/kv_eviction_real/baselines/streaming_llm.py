"""KV-cache eviction: score the cached tokens; the lowest score is evicted.

At decoding step ``t`` the evaluator calls ``keep_score(attn, acc, pos, dist,
budget, state)`` once, after the query of step ``t`` attended over the cache
(the tokens kept so far plus token ``t``). Each head keeps at most ``budget``
past tokens, so the token with the lowest score in each head is evicted (ties:
the oldest) and never comes back.

- ``attn``  (heads, t+1): this step's attention over the cache, renormalized over
  the cached tokens (0 for evicted positions).
- ``acc``   (heads, t+1): ``attn`` summed over all steps so far (H2O's statistic).
- ``pos``   (t+1,): the positions 0..t;  ``dist`` (t+1,): ``t - pos`` as floats.
- ``budget``: the number of tokens a head may keep.
- ``state``: a dict that persists over the steps of one sequence (empty at the start).

Return scores broadcastable to (heads, t+1); scores of evicted positions are
ignored. NaN is an error; +-inf is allowed.
"""

import numpy as np  # noqa: F401 - for the evolved code


# EVOLVE-BLOCK-START
def keep_score(attn, acc, pos, dist, budget, state):
    """StreamingLLM: the first 4 tokens (attention sinks) and the most recent ones."""
    return np.where(pos < 4, np.inf, -dist)
# EVOLVE-BLOCK-END
