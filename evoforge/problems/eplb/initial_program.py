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
def group_key(group_load, group_index):
    """Groups are sorted by this key (ascending), then dealt to the nodes."""
    return group_index * 1.0


def replica_priority(node_load, count):
    """The node's next spare slot goes to the expert with the highest priority."""
    return node_load * (count < 2)


def placement_key(replica_expert, replica_load):
    """A node's replicas are sorted by this key (ascending), then dealt to its GPUs."""
    return replica_expert * 1.0


def deal(rank, packs):
    """The pack that the item of the given rank in key order goes to: round-robin."""
    return rank % packs


def rebalance_experts(load, num_slots, num_groups, num_nodes, num_gpus):
    """Groups dealt to nodes in index order; a second replica for the busiest experts
    of each node; a node's replicas dealt to its GPUs in expert order."""
    layers, experts = load.shape
    group_size = experts // num_groups
    per_node = experts // num_nodes          # experts of a node
    slots = num_slots // num_nodes           # slots of a node
    gpus = num_gpus // num_nodes             # GPUs of a node

    # groups to nodes: sort by key, deal; node n takes the n-th block of the dealt order
    group_load = load.reshape(layers, num_groups, group_size).sum(axis=-1)
    group_index = np.broadcast_to(np.arange(num_groups), group_load.shape)
    ranked = np.argsort(group_key(group_load, group_index), axis=-1, kind="stable")
    dealt = np.argsort(deal(np.arange(num_groups), num_nodes), kind="stable")
    groups = ranked[:, dealt]
    node_expert = (groups[:, :, None] * group_size + np.arange(group_size)).reshape(
        layers, num_nodes, per_node)
    node_load = np.take_along_axis(load, node_expert.reshape(layers, experts), axis=-1)
    node_load = node_load.reshape(layers, num_nodes, per_node)

    # replicas: every expert once, then the spare slots one at a time by priority
    count = np.ones(node_load.shape, dtype=np.int64)
    for _ in range(slots - per_node):
        best = np.argmax(replica_priority(node_load, count), axis=-1)
        count = count + (np.arange(per_node) == best[..., None])
    # the node's replicas in expert order: slot s of the list holds the expert
    # whose cumulative count first exceeds s
    ends = np.cumsum(count, axis=-1)
    replica_expert = (ends[..., None, :] <= np.arange(slots)[:, None]).sum(axis=-1)
    replica_load = np.take_along_axis(node_load / count, replica_expert, axis=-1)

    # replicas to GPUs: sort by key, deal; GPU g takes the g-th block of the dealt order
    ranked = np.argsort(placement_key(replica_expert, replica_load), axis=-1, kind="stable")
    dealt = np.argsort(deal(np.arange(slots), gpus), kind="stable")
    local_plan = np.take_along_axis(replica_expert, ranked[..., dealt], axis=-1)
    plan = np.take_along_axis(node_expert, local_plan, axis=-1)
    return plan.reshape(layers, num_slots)
# EVOLVE-BLOCK-END
