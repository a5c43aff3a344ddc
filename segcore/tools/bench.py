"""k-means benchmark: every engine beside scikit-learn (and cuML where it imports), on the same data.

One run writes N×d float32 rows with planted clusters as Parquet, then measures each engine in a
child process of its own (so peak driver memory is per engine), every engine the same way
(:data:`TIMING`): whole fits from the same given centres with 1 and with ``--iterations`` Lloyd
iterations, the fastest of ``--repeats`` each (their difference gives the seconds per iteration,
without the load and set-up every fit pays), and one whole fit from the engine's own
seeded initialisation (k-means|| for segcore, k-means++ for scikit-learn), whose inertia is
compared with scikit-learn's best of 10 inits. Ratios are against scikit-learn's printed figures
from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segcore.kmeans import FitSettings

FILE_ROWS = 1_000_000


def make_data(folder: Path, rows: int, dims: int, k: int, seed: int) -> np.ndarray:
    """Write ``rows`` float32 rows around k planted centres, one Parquet file per million rows;
    return k initial centres drawn from the data."""
    rng = np.random.default_rng(seed)
    planted = rng.normal(0.0, 6.0, (k, dims))
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"x{j}" for j in range(dims)]
    for part, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        values = (planted[rng.integers(k, size=n)] + rng.standard_normal((n, dims))).astype(np.float32)
        table = pa.table(dict(zip(names, values.T, strict=True)))
        pq.write_table(table, folder / f"part-{part:04d}.parquet", row_group_size=131_072)
        if part == 0:
            init = values[rng.choice(n, k, replace=False)].astype(np.float64)
    return init


def _read_numpy(folder: Path) -> np.ndarray:
    table = pq.read_table(folder)
    return np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float32)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux VmHWM, since ru_maxrss carries the parent's
    peak across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spark(driver_memory: str):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


Fit = Callable[[int, "np.ndarray | None"], tuple[int, float]]  # (max_iter, init) -> (n_iter, inertia)


def _timed(fn) -> tuple[Any, float]:
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


def _measure(fit: Fit, init: np.ndarray, args: argparse.Namespace) -> dict:
    """Time the fits of one engine, every engine alike (see :data:`TIMING`): from ``init`` with one
    iteration and with ``--iterations`` (the fastest of ``--repeats`` each), then from the engine's
    own seeded initialisation; after one untimed fit that warms caches, pools and JIT compilers up."""
    fit(1, init)
    (n_one, _), t_one = min((_timed(lambda: fit(1, init)) for _ in range(args.repeats)), key=lambda r: r[1])
    (n_many, _), t_many = min(
        (_timed(lambda: fit(args.iterations, init)) for _ in range(args.repeats)), key=lambda r: r[1]
    )
    (n_whole, inertia), t_whole = _timed(lambda: fit(args.iterations, None))
    per_iteration = (t_many - t_one) / (n_many - n_one) if n_many > n_one else None
    return dict(
        iterations=n_many,
        per_iteration=per_iteration,
        init_seconds=t_whole - t_one - (n_whole - 1) * per_iteration if per_iteration else None,
        total_seconds=t_whole,
        inertia=inertia,
    )


def _segcore(fit_with, init: np.ndarray, args: argparse.Namespace) -> dict:
    """A segcore engine, given how to fit it with :class:`FitSettings`."""

    def fit(max_iter: int, given: np.ndarray | None) -> tuple[int, float]:
        result = fit_with(FitSettings(seed=args.seed, max_iter=max_iter, tol=0.0, init=given))
        return result.n_iter, result.inertia

    return _measure(fit, init, args)


def _sklearn(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from sklearn.cluster import KMeans

    X, k = _read_numpy(data), len(init)

    def fit(max_iter: int, given: np.ndarray | None) -> tuple[int, float]:
        start = "k-means++" if given is None else given
        model = KMeans(k, init=start, n_init=1, max_iter=max_iter, tol=0.0, random_state=args.seed).fit(X)
        return model.n_iter_, model.inertia_

    best = KMeans(k, n_init=10, max_iter=300, random_state=args.seed).fit(X).inertia_
    return {**_measure(fit, init, args), "best_inertia": best}


def _cuml(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    """segcore's cuml engine (cuML's KMeans on one GPU, with the core's tol)."""
    from segcore.kmeans.engines.cuml import fit_cuml

    X = _read_numpy(data)
    return _segcore(lambda settings: fit_cuml(X, len(init), settings, dtype="float32"), init, args)


def _local(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans import LocalBlocks, fit

    blocks = LocalBlocks(_read_numpy(data), dtype=args.dtype)
    return _segcore(lambda settings: fit(blocks, len(init), settings), init, args)


def _gpu(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    """segcore's local engine with its blocks on the GPU (``kmeans.device=gpu``, CuPy). Every fit
    copies the rows to the GPU first, so the total includes the transfer."""
    from segcore.kmeans import LocalBlocks, fit

    rows = _read_numpy(data)

    def on_gpu(settings: FitSettings):
        return fit(LocalBlocks(rows, dtype=args.dtype, array_module="cupy"), len(init), settings)

    return _segcore(on_gpu, init, args)


def _spark_frame(data: Path, args: argparse.Namespace):
    return _spark(args.spark_driver_memory).read.parquet(str(data))


def _spark_engine(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans.engines.spark import fit_spark

    frame, columns = _spark_frame(data, args), _columns(init)
    return _segcore(
        lambda settings: fit_spark(frame, columns, len(init), settings, dtype="float32"), init, args
    )


def _mllib(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans.core import FitSettings
    from segcore.kmeans.engines.mllib import fit_mllib

    frame, columns, k = _spark_frame(data, args), _columns(init), len(init)

    def fit(max_iter: int, given: np.ndarray | None) -> tuple[int, float]:
        settings = FitSettings(seed=args.seed, max_iter=max_iter, tol=0.0, init=given)
        result = fit_mllib(frame, columns, k, settings)
        return result.n_iter, result.inertia

    return _measure(fit, init, args)


@contextmanager
def _dask_rows(data: Path):
    """A local Dask cluster (2 single-threaded workers) and the data persisted on it."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client, dd.read_parquet(str(data)).to_dask_array(lengths=True).persist()


def _dask_engine(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans.engines.dask import fit_dask

    with _dask_rows(data) as (client, rows):
        return _segcore(
            lambda settings: fit_dask(rows, len(init), settings, client=client, dtype="float32"), init, args
        )


def _dask_ml(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from dask_ml.cluster import KMeans

    k = len(init)
    with _dask_rows(data) as (_, rows):

        def fit(max_iter: int, given: np.ndarray | None) -> tuple[int, float]:
            start = "k-means||" if given is None else given
            model = KMeans(n_clusters=k, init=start, max_iter=max_iter, tol=0.0, random_state=args.seed)
            model.fit(rows)
            return int(model.n_iter_), float(model.inertia_)

        return _measure(fit, init, args)


def _columns(init: np.ndarray) -> list[str]:
    return [f"x{j}" for j in range(init.shape[1])]


MEASURES = {
    "sklearn": _sklearn,
    "local": _local,
    "spark": _spark_engine,
    "spark-mllib": _mllib,
    "dask": _dask_engine,
    "dask-ml": _dask_ml,
    "cuml": _cuml,
    "gpu": _gpu,
}
ENGINES = tuple(MEASURES)
# Engines that need a package segcore does not install: the module to import, and how to get it.
OPTIONAL = {
    "dask": ("distributed", "pip install 'segcore[dask]'"),
    "dask-ml": ("dask_ml", "pip install dask-ml"),
    "cuml": ("cuml", "pip install 'segcore[gpu]' on a machine with an NVIDIA GPU and CUDA 12"),
    "gpu": ("cupy", "pip install cupy-cuda12x on a machine with an NVIDIA GPU"),
}
TIMING = (
    "after one untimed warm-up fit, s/iter = (t(I) - t(1)) / (n(I) - n(1)), t(m) the shortest wall time "
    "of R fits from the same given centres with max_iter=m and tol=0, n(m) its iterations, "
    "R = --repeats, I = --iterations: the same measure for every engine, free of loading, set-up and "
    "the final pass; init s = whole fit from the engine's own seeded init - t(1) - (its iterations - 1) "
    "* s/iter; total s = that whole fit; × sklearn = the printed figure over scikit-learn's, same run"
)
HEADER = (
    "engine",
    "N",
    "d",
    "k",
    "iterations",
    "s/iter",
    "s/iter × sklearn",
    "init s",
    "total s",
    "total × sklearn",
    "peak RSS MB",
    "inertia/best10",
)


def _missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here, or None when it can."""
    if engine not in OPTIONAL:
        return None
    module, install = OPTIONAL[engine]
    try:
        __import__(module)
    except ImportError:
        return f"skipped: {module} not importable ({install})"
    return None


def _figure(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def _ratio(figure: str, reference: str | None) -> str:
    """The ratio of two printed figures (so the table's ratios can be checked from the table)."""
    if reference is None or "—" in (figure, reference) or float(reference) == 0:
        return "—"
    return f"{float(figure) / float(reference):.2f}×"


def _printed(result: dict) -> tuple[str, str]:
    """An engine's seconds per iteration and total seconds as the table prints them."""
    return _figure(result["per_iteration"], ".4g"), _figure(result["total_seconds"], ".4g")


def _row(engine: str, result: dict, reference: tuple[str, str] | None, args: argparse.Namespace) -> list[str]:
    """One table row; ``reference`` is scikit-learn's printed figures (per iteration, total)."""
    shape = [engine, f"{args.rows:,}", str(args.dims), str(args.k)]
    if "error" in result or "skipped" in result:
        return [*shape, result.get("skipped") or f"failed: {result['error']}"]
    (per, total), best = _printed(result), result.get("best_inertia")
    return [
        *shape,
        str(result["iterations"]),
        per,
        _ratio(per, reference and reference[0]),
        _figure(result["init_seconds"], ".2f"),
        total,
        _ratio(total, reference and reference[1]),
        f"{result['peak_rss_mb']:.0f}",
        _figure(result["inertia"] / best if best else None, ".4f"),
    ]


def _table(results: dict[str, dict], args: argparse.Namespace) -> str:
    """The results as a Markdown table, ratios against scikit-learn's figures of the same run."""
    sklearn = results.get("sklearn", {})
    best = sklearn.get("best_inertia")
    reference = _printed(sklearn) if "per_iteration" in sklearn else None
    lines = [TIMING, "", " | ".join(HEADER), " | ".join("---" for _ in HEADER)]
    for engine, result in results.items():
        lines.append(" | ".join(_row(engine, {**result, "best_inertia": best}, reference, args)))
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="segcore bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=50, help="I: Lloyd iterations (at least 2)")
    parser.add_argument("--repeats", type=int, default=3, help="R: timed fits per iteration count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="rows of the local and gpu blocks"
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES)
    )
    parser.add_argument("--quick", action="store_true", help="200,000 rows: under two minutes on 2 cores")
    parser.add_argument("--spark-driver-memory", default="1g")
    parser.add_argument("--workdir", help="where the data goes (default: a temporary folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.iterations < 2:
        parser.error("--iterations must be at least 2 (seconds per iteration compare 1 and I iterations)")
    if args.quick:
        args.rows = 200_000
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:  # child: one engine, result as JSON on the last line
        folder = Path(args.workdir)
        result = MEASURES[args.worker](folder / "data", np.load(folder / "init.npy"), args)
        print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb()}))
        return 0
    with tempfile.TemporaryDirectory(prefix="segcore-bench-") as tmp:
        folder = Path(args.workdir or tmp)
        init = make_data(folder / "data", args.rows, args.dims, args.k, args.seed)
        np.save(folder / "init.npy", init)
        results = {}
        for engine in args.engines:
            missing = _missing(engine)
            if missing:
                results[engine] = {"skipped": missing}
                print(f"{engine}: {missing}", file=sys.stderr)
                continue
            command = [
                sys.executable,
                "-m",
                "segcore.tools.bench",
                "--worker",
                engine,
                "--workdir",
                str(folder),
                "--rows",
                str(args.rows),
                "--dims",
                str(args.dims),
                "--k",
                str(args.k),
                "--iterations",
                str(args.iterations),
                "--repeats",
                str(args.repeats),
                "--seed",
                str(args.seed),
                "--spark-driver-memory",
                args.spark_driver_memory,
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                results[engine] = {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
            else:
                results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{engine}: done", file=sys.stderr)
        print(_table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
