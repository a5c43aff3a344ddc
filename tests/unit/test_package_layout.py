"""The package layout's rules, checked on the source: MLflow behind one door, the core and the
input stages free of tracking, the stage functions re-exported by ``segcore``."""

from __future__ import annotations

import ast
from pathlib import Path

import segcore

PACKAGE = Path(segcore.__file__).parent
MLFLOW_DOORS = ("tracking/", "model/pyfunc.py", "value/pyfunc.py")


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


def test_only_tracking_and_the_pyfuncs_import_mlflow():
    importers = _modules_importing("mlflow")
    assert importers and all(path.startswith(MLFLOW_DOORS) for path in importers), importers


def test_the_lake_features_and_the_core_never_import_tracking():
    for package in ("lake", "features", "kmeans"):
        assert _modules_importing("segcore.tracking", PACKAGE / package) == [], package


def test_the_package_re_exports_the_stage_functions():
    import segcore.score.stage
    import segcore.train.stage

    assert segcore.train_segments is segcore.train.stage.train_segments
    assert segcore.score_segments is segcore.score.stage.score_segments
    assert {"load_config", "run_features", "promote_version", "compare_scorings", "build_report"} <= set(
        segcore.__all__
    )
    assert all(callable(getattr(segcore, name)) for name in segcore.__all__)
