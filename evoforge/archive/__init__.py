"""The archive: islands of MAP-Elites grids over program features."""

from evoforge.archive.features import FeatureSpace
from evoforge.archive.map_elites import Archive

__all__ = ["Archive", "FeatureSpace"]
