"""Proposers: model-free mutation, and (later) LLMs; a bandit picks among operators."""
