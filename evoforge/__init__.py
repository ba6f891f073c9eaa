"""evoforge: evolve programs against a reliable verifier."""

__version__ = "0.1.0"
