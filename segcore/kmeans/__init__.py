"""The clustering core: one k-means algorithm (:mod:`segcore.kmeans.core`) and its engines."""

from segcore.kmeans.core import FitSettings, KMeansResult, fit
from segcore.kmeans.local import LocalBlocks

__all__ = ["FitSettings", "KMeansResult", "LocalBlocks", "fit"]
