"""The experiment's training runs as tables: one row per training job, and two runs side by side.

Read-only MLflow queries (SQLite store or tracking server alike); ``segcore runs`` prints them and
``notebooks/02_compare_runs.ipynb`` shows them.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from segcore.config import Config
from segcore.errors import SegcoreError

QUALITY = ["silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari"]
RUN_COLUMNS = [
    "run_id",
    "started",
    "as_of",
    "engine",
    "k",
    "rule",
    *QUALITY,
    "version",
    "alias",
    "fit_s",
    "duration_s",
]


def _is_training_job(run: Run) -> bool:
    """A training job's parent run (child runs hold one k each; other stages log other runs)."""
    return "chosen_k" in run.data.params and "mlflow.parentRunId" not in run.data.tags


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Version -> its aliases (comma-separated) of registered model ``name``."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException:
        return {}
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(str(version), []).append(alias)
    return {version: ",".join(names) for version, names in by_version.items()}


def _row(run: Run, aliases: dict[str, str]) -> dict:
    params, metrics, info = run.data.params, run.data.metrics, run.info
    version = run.data.tags.get("model_version", "")
    return {
        "run_id": info.run_id,
        "started": dt.datetime.fromtimestamp(info.start_time / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "as_of": params.get("as_of", ""),
        "engine": params.get("engine", ""),
        "k": int(params["chosen_k"]),
        "rule": params.get("k_rule", ""),
        **{metric: metrics.get(metric, float("nan")) for metric in QUALITY},
        "version": version,
        "alias": aliases.get(version, ""),
        "fit_s": metrics.get("fit_seconds", float("nan")),  # the chosen k's fit
        "duration_s": (info.end_time - info.start_time) / 1000 if info.end_time else float("nan"),
    }


def training_runs(config: Config, as_of: dt.date | None = None, engine: str | None = None) -> pd.DataFrame:
    """The experiment's training runs, newest first: as_of, engine, chosen k and rule, quality
    metrics and stability, the registered version and its aliases, the chosen k's fit time and
    the run's duration."""
    client = MlflowClient(config.tracking_uri())
    experiment = client.get_experiment_by_name(config.mlflow.experiment)
    if experiment is None:
        return pd.DataFrame(columns=RUN_COLUMNS)
    conditions = [f"params.as_of = '{as_of.isoformat()}'"] if as_of else []
    conditions += [f"params.engine = '{engine}'"] if engine else []
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            " and ".join(conditions),
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs += [run for run in page if _is_training_job(run)]
        token = page.token
        if not token:
            break
    aliases = _aliases(client, config.mlflow.registered_model)
    return pd.DataFrame([_row(run, aliases) for run in runs], columns=RUN_COLUMNS)


def _get_run(client: MlflowClient, run_id: str, config: Config) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise SegcoreError(
            f"run {run_id} does not exist in {config.tracking_uri()}: `segcore runs` lists the run ids"
        ) from None


def _difference(kind: str, a, b) -> str:
    if a is None or b is None:
        return "only in " + ("B" if a is None else "A")
    if kind == "metric":
        return f"{b - a:+.4g}"
    return "" if a == b else "changed"


def compare_runs(config: Config, run_a: str, run_b: str) -> pd.DataFrame:
    """Params and metrics of two runs side by side (columns kind, name, A, B, difference: B − A for
    metrics, ``changed`` for params that differ); rows that differ first, then by kind and name."""
    client = MlflowClient(config.tracking_uri())
    a, b = (_get_run(client, run_id, config).data for run_id in (run_a, run_b))
    rows = []
    for kind, left, right in (("param", a.params, b.params), ("metric", a.metrics, b.metrics)):
        for name in sorted(left.keys() | right.keys()):
            first, second = left.get(name), right.get(name)
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    "A": first,
                    "B": second,
                    "difference": _difference(kind, first, second),
                }
            )
    table = pd.DataFrame(rows, columns=["kind", "name", "A", "B", "difference"])
    same = table["difference"].isin(["", "+0"])
    return pd.concat([table[~same], table[same]], ignore_index=True)
