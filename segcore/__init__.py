"""segcore: customer segments from a data lake.

The stage functions, each taking a validated :class:`~segcore.config.Config`:
:func:`run_features`, :func:`train_segments`, :func:`score_segments`, :func:`compare_scorings`
(drift), :func:`promote_version`, :func:`export_audiences`, :func:`measure_lift` and
:func:`build_report`; :func:`load_config` reads one from
YAML with ``--set`` style overrides. They are imported on first use, so that
``import segcore.kmeans`` needs neither Spark nor MLflow.
"""

from importlib import import_module

_EXPORTS = {
    "load_config": "segcore.config",
    "run_features": "segcore.features.stage",
    "train_segments": "segcore.train.stage",
    "score_segments": "segcore.score.stage",
    "compare_scorings": "segcore.drift.stage",
    "promote_version": "segcore.promote.stage",
    "export_audiences": "segcore.audiences.stage",
    "measure_lift": "segcore.lift.stage",
    "build_report": "segcore.report.stage",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'segcore' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
