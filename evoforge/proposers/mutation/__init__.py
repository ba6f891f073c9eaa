"""The model-free proposer: AST mutation operators picked by a bandit."""

from evoforge.proposers.mutation.operators import OPERATORS, OpContext
from evoforge.proposers.mutation.proposer import MutationProposer

__all__ = ["OPERATORS", "MutationProposer", "OpContext"]
