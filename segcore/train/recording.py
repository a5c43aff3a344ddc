"""What a training run records: its report (plots and HTML page), a child run per k, parameters,
metrics, tags and artifacts. Only aggregates and plots; never a customer's row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segcore.config import Config
from segcore.kmeans.kernels import nearest
from segcore.report import plots
from segcore.report.html import build_html
from segcore.tracking.lifecycle import TrackedRun, tracked_run
from segcore.train.inputs import TrainingInputs
from segcore.train.segments import Segments
from segcore.train.sweep import Selection


@dataclass(frozen=True)
class TrainingReport:
    summary: str  # one line: as_of, k and why, stability
    images: dict[str, bytes]  # file name under plots/ -> PNG
    page: str  # the HTML report


def draw_report(
    config: Config, inputs: TrainingInputs, selection: Selection, segments: Segments
) -> TrainingReport:
    """The plots (the k choice only when several k were tried) and the page that embeds them."""
    model, profile = segments.model, segments.profile
    sample_ids = np.asarray(model.segment_ids)[nearest(inputs.points, model.centres)[0]]
    images = {
        "segment_sizes.png": plots.sizes_plot(profile),
        "profile_heatmap.png": plots.heatmap_plot(profile, model.features),
        "projection.png": plots.projection_plot(
            inputs.points, sample_ids, segments.names, config.kmeans.seed
        ),
    }
    if len(selection.k_table) > 1:
        images["k_selection.png"] = plots.k_selection_plot(selection.k_table, selection.chosen)
    summary = (
        f"as_of {config.as_of}, k={selection.chosen} ({selection.reason}), "
        f"stability_ari={selection.stability_ari:.3f}"
    )
    page = build_html(f"Customer segments — {config.as_of}", summary, images, profile)
    return TrainingReport(summary, images, page)


def training_params(config: Config, selection: Selection, inputs: TrainingInputs) -> dict:
    ks = selection.k_table["k"].tolist()
    return {
        "as_of": config.as_of.isoformat(),
        "engine": config.kmeans.engine,
        "k": selection.chosen,
        "chosen_k": selection.chosen,
        "k_tried": ",".join(map(str, ks)),
        "k_rule": config.select.rule if len(ks) > 1 else "single",
        "k_reason": selection.reason,
        "init": config.kmeans.init,
        "seed": config.kmeans.seed,
        "max_iter": config.kmeans.max_iter,
        "tol": config.kmeans.tol,
        "dtype": config.kmeans.dtype,
        "features": ",".join(inputs.preparation.features),
        "log_features": ",".join(inputs.preparation.log_features),
        "feature_rows": inputs.rows,
    }


def record_every_k(run: TrackedRun, config: Config, selection: Selection) -> None:
    """A child run per k tried, with its fit and quality figures."""
    for row in selection.k_table.to_dict("records"):
        with tracked_run(run.tracking, f"k={row['k']}", nested=True) as child:
            child.log_params(
                {"k": row["k"], "engine": config.kmeans.engine, "as_of": config.as_of.isoformat()}
            )
            child.log_metrics({key: value for key, value in row.items() if key != "k"})


def record_training(
    run: TrackedRun,
    config: Config,
    selection: Selection,
    segments: Segments,
    report: TrainingReport,
    params: dict,
) -> None:
    """The parent run's parameters, metrics, tags and artifacts (the model is logged separately)."""
    run.log_params(params)
    run.log_metrics(selection.metrics)
    run.set_tags({"summary": report.summary})
    if selection.warnings:
        run.set_tags({"warning": "; ".join(selection.warnings)})
    run.log_config(config)
    run.log_table(segments.profile, "profile/segment_profile.csv")
    run.log_table(selection.k_table, "selection/k_selection.csv")
    run.log_table(segments.alignment.matching, "alignment/matching.csv")
    for name, data in report.images.items():
        run.log_bytes(data, f"plots/{name}")
    run.log_text(report.page, "report/segments_report.html")
