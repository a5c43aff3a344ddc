"""A scikit-learn estimator over every engine of the clustering core.

``engine="local"`` takes NumPy arrays or pandas frames and passes scikit-learn's estimator checks;
``engine="spark"`` takes a Spark DataFrame (``input_cols``, or an array/vector ``features_col``);
``engine="dask"`` takes a Dask array (computed on ``client``, or the current Dask client).
With the distributed engines the rows stay on the cluster: ``labels_`` is then a Spark
DataFrame with a ``label`` column, or a lazy Dask array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from segcore.kmeans import core
from segcore.kmeans.arrays import DEVICE_MODULES
from segcore.kmeans.engines.local import LocalBlocks

ENGINES = ("local", "spark", "dask")


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means clustering with seeded k-means|| initialisation (or given centres) and Lloyd
    iterations, on one machine, a Spark cluster or a Dask cluster.

    Every engine runs the same algorithm (:func:`segcore.kmeans.core.fit`): with the same data,
    parameters and ``random_state`` they give the same centres, whatever the partitioning.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters (centres) to find.
    engine : {"local", "spark", "dask"}, default="local"
        Where the rows are: a NumPy array or pandas frame in this process, a Spark DataFrame (the
        fit is one barrier stage on the executors), or a Dask array (on ``client``'s cluster).
    init : "k-means||" or ndarray of shape (n_clusters, n_features), default="k-means||"
        Seeded scalable k-means++ (Bahmani et al., 2012), or the initial centres.
    max_iter : int, default=300
        Lloyd iterations at most.
    tol : float, default=1e-4
        Convergence, as scikit-learn's: the squared centre shift summed over the centres is at
        most ``tol`` times the mean per-feature variance of the data; 0 runs until no centre moves.
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means|| draws, which are keyed by each row's values, never by where the row
        is stored. Pass an int for the same centres on every run and engine.
    oversampling : float, default=2.0
        k-means|| candidates drawn per round, as a multiple of ``n_clusters``.
    init_rounds : int, default=5
        k-means|| sampling rounds.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the rows during the fit (centred on their mean in float64 first).
    device : {"cpu", "gpu"}, default="cpu"
        Where the blocks of rows are held and the kernels run: NumPy, or CuPy on the GPU (of this
        process, of each Dask worker, of each Spark barrier task).
    input_cols : list of str, default=None
        ``engine="spark"``: the numeric columns to cluster.
    features_col : str, default=None
        ``engine="spark"``: a vector or array column to cluster, instead of ``input_cols``.
    num_workers : int, default=None
        ``engine="spark"``: barrier tasks holding the rows (default: the default parallelism).
    client : distributed.Client, default=None
        ``engine="dask"``: the cluster's client (default: the current client).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centres, in float64.
    labels_ : ndarray of shape (n_samples,), Spark DataFrame or Dask array
        Index of each row's nearest centre. With spark, the input DataFrame with a ``label``
        column; with dask, a lazy Dask array: the rows stay on the cluster.
    inertia_ : float
        Sum of squared distances of the rows to their nearest centre.
    n_iter_ : int
        Lloyd iterations run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during ``fit`` (local engine, pandas input with string column
        names only).
    result_ : segcore.kmeans.core.KMeansResult
        The core's result: also counts per centre, convergence and timings.

    See Also
    --------
    sklearn.cluster.KMeans : scikit-learn's estimator, whose ``tol`` and empty-cluster handling
        this one follows.

    Examples
    --------
    >>> import numpy as np
    >>> from segcore.kmeans.estimator import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> kmeans = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> kmeans.labels_
    array([0, 0, 0, 1, 1, 1])
    >>> kmeans.predict([[0, 0], [12, 3]])
    array([0, 1])
    >>> kmeans.cluster_centers_
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> float(kmeans.inertia_)
    16.0
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        engine: str = "local",
        init: str | np.ndarray = "k-means||",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
        oversampling: float = 2.0,
        init_rounds: int = 5,
        dtype: str = "float64",
        device: str = "cpu",
        input_cols: list[str] | None = None,
        features_col: str | None = None,
        num_workers: int | None = None,
        client: Any = None,
    ):
        self.n_clusters = n_clusters
        self.engine = engine
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.oversampling = oversampling
        self.init_rounds = init_rounds
        self.dtype = dtype
        self.device = device
        self.input_cols = input_cols
        self.features_col = features_col
        self.num_workers = num_workers
        self.client = client

    def _settings(self) -> core.FitSettings:
        if self.engine not in ENGINES:
            raise ValueError(f"engine={self.engine!r} is not one of {ENGINES}")
        init = None if isinstance(self.init, str) and self.init == "k-means||" else np.asarray(self.init)
        if isinstance(self.init, str) and init is not None:
            raise ValueError(f"init={self.init!r}: use 'k-means||' or an array of initial centres")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return core.FitSettings(
            seed=seed,
            max_iter=self.max_iter,
            tol=self.tol,
            init=init,
            oversampling=self.oversampling,
            init_rounds=self.init_rounds,
        )

    def _array_module(self) -> str:
        if self.device not in DEVICE_MODULES:
            raise ValueError(f"device={self.device!r} is not one of {tuple(DEVICE_MODULES)}")
        return DEVICE_MODULES[self.device]

    def fit(self, X, y=None):
        settings = self._settings()
        if self.engine == "spark":
            self._fit_spark(X, settings)
        elif self.engine == "dask":
            self._fit_dask(X, settings)
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32])
            if X.shape[0] < self.n_clusters:
                raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
            blocks = LocalBlocks(X, dtype=self.dtype, array_module=self._array_module())
            self._set_result(core.fit(blocks, self.n_clusters, settings, engine="local"))
            self.labels_ = blocks.assign(self.cluster_centers_)[0]
        return self

    def _set_result(self, result: core.KMeansResult) -> None:
        self.cluster_centers_ = result.centres
        self.inertia_ = result.inertia
        self.n_iter_ = result.n_iter
        self.result_ = result

    def _spark_columns(self, frame) -> tuple[Any, list[str]]:
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F
        from pyspark.sql.types import ArrayType

        if self.input_cols:
            return frame, list(self.input_cols)
        if not self.features_col:
            raise ValueError("engine='spark' needs input_cols (a list of columns) or features_col")
        column = F.col(self.features_col)
        if not isinstance(frame.schema[self.features_col].dataType, ArrayType):
            column = vector_to_array(column)
        width = frame.select(F.size(column)).first()[0]
        names = [f"_segcore_f{i}" for i in range(width)]
        return frame.select("*", *[column[i].alias(n) for i, n in enumerate(names)]), names

    def _fit_spark(self, frame, settings) -> None:
        from segcore.kmeans.engines.spark import assign_spark, fit_spark

        frame, columns = self._spark_columns(frame)
        result = fit_spark(
            frame,
            columns,
            self.n_clusters,
            settings,
            dtype=self.dtype,
            num_workers=self.num_workers,
            array_module=self._array_module(),
        )
        self._set_result(result)
        self.n_features_in_ = len(columns)
        self.labels_ = assign_spark(frame, columns, result.centres)

    def _dask_client(self):
        if self.client is not None:
            return self.client
        from distributed import get_client

        return get_client()

    def _fit_dask(self, array, settings) -> None:
        import dask.array as da

        from segcore.kmeans.engines.dask import assign_dask, fit_dask

        array = array if isinstance(array, da.Array) else da.from_array(np.asarray(array))
        result = fit_dask(
            array,
            self.n_clusters,
            settings,
            client=self._dask_client(),
            dtype=self.dtype,
            array_module=self._array_module(),
        )
        self._set_result(result)
        self.n_features_in_ = array.shape[1]
        self.labels_ = assign_dask(array, result.centres)[0]

    def predict(self, X):
        """Index of the nearest centre (for Spark: ``X`` with a ``label`` column)."""
        check_is_fitted(self)
        if self.engine == "spark":
            from segcore.kmeans.engines.spark import assign_spark

            frame, columns = self._spark_columns(X)
            return assign_spark(frame, columns, self.cluster_centers_)
        if self.engine == "dask":
            from segcore.kmeans.engines.dask import assign_dask

            return assign_dask(X, self.cluster_centers_)[0]
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return LocalBlocks(X).assign(self.cluster_centers_)[0]

    def transform(self, X) -> np.ndarray:
        """Euclidean distance of every row to every centre (local engine)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        squared = (
            (X**2).sum(axis=1)[:, None]
            - 2 * X @ self.cluster_centers_.T
            + (self.cluster_centers_**2).sum(axis=1)
        )
        return np.sqrt(np.maximum(squared, 0))

    def score(self, X, y=None) -> float:
        """Opposite of the inertia of ``X`` against the fitted centres (local engine)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return -LocalBlocks(X).partials(self.cluster_centers_).inertia
