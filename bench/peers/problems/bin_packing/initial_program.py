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
    """First fit: prefer the earliest-opened bin that fits the item."""
    return -np.arange(len(bins), dtype=float)
# EVOLVE-BLOCK-END
