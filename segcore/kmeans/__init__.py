"""The clustering core: one k-means algorithm (:mod:`segcore.kmeans.core`), its engines
(:mod:`segcore.kmeans.engines`) and a scikit-learn estimator over them (:class:`KMeans`).

Depends on NumPy, scikit-learn and PyArrow; the Spark, Dask and cuML engines import their
libraries only when used, and nothing here knows the pipeline's config.
"""

from segcore.kmeans.core import FitSettings, KMeansResult, fit
from segcore.kmeans.engines.local import LocalBlocks
from segcore.kmeans.estimator import KMeans

__all__ = ["FitSettings", "KMeans", "KMeansResult", "LocalBlocks", "fit"]
