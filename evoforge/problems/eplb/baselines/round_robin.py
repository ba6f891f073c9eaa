"""Expert-parallel load balancing: place expert replicas on GPUs.

The evaluator calls ``rebalance_experts(load, num_slots, num_groups, num_nodes,
num_gpus)`` with ``load`` a float array of shape (layers, experts): the tokens
each logical expert received in the last time window, per MoE layer. It returns
``phy2log``, an integer array of shape (layers, num_slots): the logical expert
held by each physical slot. Slot ``s`` lives on GPU ``s // (num_slots //
num_gpus)``; GPU ``g`` lives on node ``g // (num_gpus // num_nodes)``. Experts
``k * E/G ... (k+1) * E/G - 1`` form group ``k``; every replica of a group's
experts must sit on one node, every expert needs at least one replica. The plan
is scored on the NEXT window's load (each expert's tokens split evenly among its
replicas) and by the CPU time the call takes.
"""

import numpy as np


# EVOLVE-BLOCK-START
def rebalance_experts(load, num_slots, num_groups, num_nodes, num_gpus):
    """Ignore the load: node n holds groups 2n and 2n+1; its experts fill its slots cyclically."""
    layers, experts = load.shape
    slots_per_node = num_slots // num_nodes
    experts_per_node = experts // num_nodes
    local = np.arange(slots_per_node) % experts_per_node
    node = np.repeat(np.arange(num_nodes), slots_per_node)
    plan = node * experts_per_node + np.tile(local, num_nodes)
    return np.tile(plan, (layers, 1))
# EVOLVE-BLOCK-END
