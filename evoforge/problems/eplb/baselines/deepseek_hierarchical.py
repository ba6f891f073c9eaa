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
def balanced_packing(weights, num_packs):
    """Pack the items of each row into ``num_packs`` packs of equal item count.

    Items go in order of descending weight, each into the lightest pack that
    still has room. Returns the pack of each item and its rank inside the pack,
    both of shape ``weights.shape``.
    """
    rows, items = weights.shape
    per_pack = items // num_packs
    pack_of = np.empty((rows, items), dtype=np.int64)
    rank_in_pack = np.empty((rows, items), dtype=np.int64)
    order = np.argsort(-weights, axis=1, kind="stable")
    for r in range(rows):
        w = weights[r].tolist()
        pack_load = [0.0] * num_packs
        pack_size = [0] * num_packs
        for item in order[r].tolist():
            best = -1
            for p in range(num_packs):
                if pack_size[p] < per_pack and (best < 0 or pack_load[p] < pack_load[best]):
                    best = p
            pack_of[r, item] = best
            rank_in_pack[r, item] = pack_size[best]
            pack_size[best] += 1
            pack_load[best] += w[item]
    return pack_of, rank_in_pack


def replicate_experts(weights, num_physical):
    """Give each row's experts ``num_physical`` replicas in all.

    Every expert starts with one replica; each spare replica goes to the expert
    with the highest load per replica. Returns the expert of each replica, the
    replica's index among its expert's replicas, and the replica count per expert.
    """
    rows, experts = weights.shape
    phy2log = np.empty((rows, num_physical), dtype=np.int64)
    phy2log[:, :experts] = np.arange(experts)
    replica_rank = np.zeros((rows, num_physical), dtype=np.int64)
    count = np.ones((rows, experts), dtype=np.int64)
    row_index = np.arange(rows)
    for slot in range(experts, num_physical):
        best = np.argmax(weights / count, axis=1)
        phy2log[:, slot] = best
        replica_rank[:, slot] = count[row_index, best]
        count[row_index, best] += 1
    return phy2log, replica_rank, count


def inverse(perm):
    """Row-wise inverse of a permutation array."""
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.arange(perm.shape[1])[None, :], axis=1)
    return inv


def rebalance_experts(load, num_slots, num_groups, num_nodes, num_gpus):
    """DeepSeek's hierarchical policy: groups to nodes, replicas in nodes, replicas to GPUs."""
    layers, experts = load.shape
    group_size = experts // num_groups
    groups_per_node = num_groups // num_nodes
    gpus_per_node = num_gpus // num_nodes
    slots_per_node = num_slots // num_nodes
    experts_per_node = experts // num_nodes

    # 1. groups to nodes, an equal number of groups per node
    group_load = load.reshape(layers, num_groups, group_size).sum(axis=2)
    group_node, group_rank = balanced_packing(group_load, num_nodes)
    # node-major order of the logical experts: expert -> position among all nodes
    first = (group_node * groups_per_node + group_rank) * group_size
    log2mlog = (first[:, :, None] + np.arange(group_size)).reshape(layers, experts)
    mlog2log = inverse(log2mlog)

    # 2. replicas inside each node
    node_load = np.take_along_axis(load, mlog2log, axis=1)
    node_load = node_load.reshape(layers * num_nodes, experts_per_node)
    phy2mlog, _, mlog_count = replicate_experts(node_load, slots_per_node)

    # 3. replicas to the node's GPUs, an equal number of replicas per GPU
    replica_load = np.take_along_axis(node_load / mlog_count, phy2mlog, axis=1)
    gpu_of, rank_on_gpu = balanced_packing(replica_load, gpus_per_node)
    phy2pphy = gpu_of * (slots_per_node // gpus_per_node) + rank_on_gpu
    pphy2phy = inverse(phy2pphy)
    pphy2mlog = np.take_along_axis(phy2mlog, pphy2phy, axis=1)
    offsets = np.arange(num_nodes) * experts_per_node
    pphy2mlog = (pphy2mlog.reshape(layers, num_nodes, slots_per_node)
                 + offsets[None, :, None]).reshape(layers, num_slots)
    return np.take_along_axis(mlog2log, pphy2mlog, axis=1)
# EVOLVE-BLOCK-END
