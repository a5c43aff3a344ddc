"""The clustering core imports and fits in a process where pyspark, mlflow and dask cannot be
imported: ``import segcore.kmeans as k; k.KMeans`` needs only NumPy and scikit-learn."""

import subprocess
import sys

# Imports of pyspark, mlflow and dask fail; then the core must still import and fit.
WITHOUT_SPARK_OR_MLFLOW = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "mlflow", "dask", "distributed"):
            raise ImportError(f"{name} is not importable here")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
import segcore.kmeans as k

model = k.KMeans(n_clusters=2, random_state=0).fit(np.array([[0.0], [0.1], [5.0], [5.1]]))
print(sorted(model.labels_.tolist()))
"""


def test_the_core_imports_and_fits_without_spark_or_mlflow(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SPARK_OR_MLFLOW], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "[0, 0, 1, 1]"
