"""The package layout's rules, checked on the source: MLflow behind one door, the core and the
input stages free of tracking, and the clustering core importable without Spark or MLflow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import segcore

PACKAGE = Path(segcore.__file__).parent
MLFLOW_DOORS = ("tracking/", "model/pyfunc.py")

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


def _imports(file: Path) -> set[str]:
    """Every module ``file`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules_importing(prefix: str, under: Path = PACKAGE) -> list[str]:
    return sorted(
        str(file.relative_to(PACKAGE))
        for file in under.rglob("*.py")
        if any(name == prefix or name.startswith(prefix + ".") for name in _imports(file))
    )


def test_only_tracking_and_the_pyfunc_import_mlflow():
    importers = _modules_importing("mlflow")
    assert importers and all(path.startswith(MLFLOW_DOORS) for path in importers), importers


def test_the_lake_features_and_the_core_never_import_tracking():
    for package in ("lake", "features", "kmeans"):
        assert _modules_importing("segcore.tracking", PACKAGE / package) == [], package


def test_the_core_imports_and_fits_without_spark_or_mlflow(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SPARK_OR_MLFLOW], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "[0, 0, 1, 1]"


def test_the_package_re_exports_the_stage_functions():
    import segcore.score.stage
    import segcore.train.stage

    assert segcore.train_segments is segcore.train.stage.train_segments
    assert segcore.score_segments is segcore.score.stage.score_segments
    assert {"load_config", "run_features", "promote_version", "compare_scorings", "build_report"} <= set(
        segcore.__all__
    )
    assert all(callable(getattr(segcore, name)) for name in segcore.__all__)
