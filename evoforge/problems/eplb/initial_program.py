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
def spare_priority(node_load):
    """Which experts of a node get its spare slots: the highest scores, one each."""
    return node_load


def placement_key(replica_expert, replica_load):
    """Replicas of a node are sorted by this key, then dealt to its GPUs round-robin."""
    return replica_expert * 1.0


def rebalance_experts(load, num_slots, num_groups, num_nodes, num_gpus):
    """Groups to nodes in order; one extra replica for the busiest experts; round-robin GPUs."""
    layers, experts = load.shape
    gpus_per_node = num_gpus // num_nodes
    slots_per_node = num_slots // num_nodes
    experts_per_node = experts // num_nodes
    spare = slots_per_node - experts_per_node

    # group k goes to node k // (groups per node): node n holds experts n*E/N ... (n+1)*E/N - 1
    node_load = load.reshape(layers, num_nodes, experts_per_node)
    count = np.ones(node_load.shape, dtype=np.int64)
    busiest = np.argsort(-spare_priority(node_load), axis=2, kind="stable")[:, :, :spare]
    np.put_along_axis(count, busiest, 2, axis=2)

    # the node's replicas, expert by expert, each with its share of the expert's load
    local = np.arange(experts_per_node)
    plan = np.empty((layers, num_nodes, slots_per_node), dtype=np.int64)
    for layer in range(layers):
        for node in range(num_nodes):
            replica_expert = np.repeat(local, count[layer, node])
            replica_load = node_load[layer, node][replica_expert] / count[layer, node][replica_expert]
            order = np.argsort(placement_key(replica_expert, replica_load), kind="stable")
            # the k-th replica in this order goes to GPU k % gpus_per_node
            k = np.arange(slots_per_node)
            slot = (k % gpus_per_node) * (slots_per_node // gpus_per_node) + k // gpus_per_node
            plan[layer, node, slot] = replica_expert[order] + node * experts_per_node
    return plan.reshape(layers, num_slots)
# EVOLVE-BLOCK-END
