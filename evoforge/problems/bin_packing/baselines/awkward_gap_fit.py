"""Online bin packing: score the bins an item may go to.

The evaluator calls ``priority(item, bins)`` once per arriving item. ``bins``
holds the remaining capacities of the open bins the item fits in, in the order
they were opened, followed by one fresh empty bin (the full capacity). The item
goes to the bin with the highest score (scores are rounded to 6 decimals; ties
go to the earliest bin), so scoring the last entry highest opens a new bin.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Best fit that refuses to leave an awkward gap.

    A gap between 5% and 20% of the capacity is too small for most later items
    yet too large to ignore, so such bins rank below opening a new bin. Near
    exact fits (gap up to 5%) and roomy gaps are ranked as in best fit.
    """
    gap = bins - item
    capacity = bins[-1]  # the last entry is always the fresh, empty bin
    awkward = (gap > capacity / 20) & (gap < capacity / 5)
    return np.where(awkward, -gap - capacity, -gap)
# EVOLVE-BLOCK-END
