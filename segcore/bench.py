"""k-means benchmark: every available engine beside scikit-learn and Spark MLlib, on the same data.

One run writes N×d float32 rows with planted clusters as Parquet, then measures each engine in a
child process of its own (so peak driver memory is per engine):

- Lloyd from the same initial centres for ``--iterations`` iterations with tol=0: seconds per
  iteration (the median of the engine's own per-iteration timings where it reports them, else
  the fit's seconds divided by its iterations);
- a whole fit from seeded k-means|| (k-means++ for scikit-learn) for the same iterations:
  initialisation seconds, total seconds and the final inertia, against scikit-learn's best of 10
  inits.

Ratios are against MLlib and scikit-learn measured in the same run.
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


def _segcore(fit_with, init: np.ndarray, args: argparse.Namespace) -> dict:
    """A segcore engine: Lloyd from the given centres, then a whole fit from seeded k-means||."""
    given = fit_with(FitSettings(seed=args.seed, max_iter=args.iterations, tol=0.0, init=init))
    started = time.perf_counter()
    whole = fit_with(FitSettings(seed=args.seed, max_iter=args.iterations, tol=0.0))
    return dict(
        per_iteration=float(np.median(given.iteration_seconds)),
        init_seconds=whole.init_seconds,
        total_seconds=time.perf_counter() - started,
        inertia=whole.inertia,
    )


def _timed(fn) -> tuple[Any, float]:
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


def _sklearn(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from sklearn.cluster import KMeans, kmeans_plusplus

    X, k = _read_numpy(data), len(init)
    _, lloyd_seconds = _timed(
        lambda: KMeans(k, init=init, n_init=1, max_iter=args.iterations, tol=0.0, algorithm="lloyd").fit(X)
    )
    _, init_seconds = _timed(lambda: kmeans_plusplus(X, k, random_state=args.seed))
    whole, total_seconds = _timed(
        lambda: KMeans(k, n_init=1, max_iter=args.iterations, tol=0.0, random_state=args.seed).fit(X)
    )
    best = KMeans(k, n_init=10, max_iter=300, random_state=args.seed).fit(X).inertia_
    return dict(
        per_iteration=lloyd_seconds / args.iterations,
        init_seconds=init_seconds,
        total_seconds=total_seconds,
        inertia=whole.inertia_,
        best_inertia=best,
    )


def _local(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans import LocalBlocks, fit

    blocks = LocalBlocks(_read_numpy(data))
    return _segcore(lambda settings: fit(blocks, len(init), settings), init, args)


def _spark_frame(data: Path, args: argparse.Namespace):
    return _spark(args.spark_driver_memory).read.parquet(str(data))


def _spark_engine(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.kmeans.spark_engine import fit_spark

    frame, columns = _spark_frame(data, args), _columns(init)
    return _segcore(
        lambda settings: fit_spark(frame, columns, len(init), settings, dtype="float32"), init, args
    )


def _mllib(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from segcore.config import KMeansConfig
    from segcore.kmeans.engines import fit_mllib

    frame, columns, k = _spark_frame(data, args), _columns(init), len(init)
    settings = KMeansConfig(k=k, max_iter=args.iterations, tol=0.0, seed=args.seed)
    given = fit_mllib(frame, columns, k, settings, init)
    whole = fit_mllib(frame, columns, k, settings, None)
    return dict(
        per_iteration=given.fit_seconds / max(given.n_iter, 1),
        init_seconds=None,
        total_seconds=whole.fit_seconds,
        inertia=whole.inertia,
    )


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
    from segcore.kmeans.dask_engine import fit_dask

    with _dask_rows(data) as (client, rows):
        return _segcore(
            lambda settings: fit_dask(rows, len(init), settings, client=client, dtype="float32"), init, args
        )


def _dask_ml(data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    from dask_ml.cluster import KMeans

    k = len(init)
    with _dask_rows(data) as (_, rows):
        given, lloyd_seconds = _timed(
            lambda: KMeans(n_clusters=k, init=init, max_iter=args.iterations, tol=0.0).fit(rows)
        )
        whole, total_seconds = _timed(
            lambda: KMeans(
                n_clusters=k, init="k-means||", max_iter=args.iterations, tol=0.0, random_state=args.seed
            ).fit(rows)
        )
    return dict(
        per_iteration=lloyd_seconds / max(given.n_iter_, 1),
        init_seconds=None,
        total_seconds=total_seconds,
        inertia=float(whole.inertia_),
    )


def _columns(init: np.ndarray) -> list[str]:
    return [f"x{j}" for j in range(init.shape[1])]


MEASURES = {
    "sklearn": _sklearn,
    "local": _local,
    "spark": _spark_engine,
    "spark-mllib": _mllib,
    "dask": _dask_engine,
    "dask-ml": _dask_ml,
}
ENGINES = tuple(MEASURES)


def _available(engine: str) -> bool:
    module = {"dask": "distributed", "dask-ml": "dask_ml"}.get(engine)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _format(value, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def _table(results: dict[str, dict], args: argparse.Namespace) -> str:
    mllib = results.get("spark-mllib", {}).get("per_iteration")
    sklearn = results.get("sklearn", {})
    best = sklearn.get("best_inertia")
    header = (
        "engine",
        "N",
        "d",
        "k",
        "s/iter",
        "init s",
        "total s",
        "peak RSS MB",
        "vs MLlib",
        "vs sklearn",
        "inertia/best10",
    )
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for engine, r in results.items():
        if "error" in r:
            lines.append(f"{engine} | {args.rows} | {args.dims} | {args.k} | failed: {r['error']}")
            continue
        per = r["per_iteration"]
        lines.append(
            " | ".join(
                [
                    engine,
                    f"{args.rows:,}",
                    str(args.dims),
                    str(args.k),
                    f"{per:.4f}",
                    _format(r["init_seconds"], ".2f"),
                    f"{r['total_seconds']:.2f}",
                    f"{r['peak_rss_mb']:.0f}",
                    _format(mllib / per if mllib else None, ".1f") + "× faster" if mllib else "—",
                    _format(per / sklearn["per_iteration"] if sklearn else None, ".2f") + "× time"
                    if sklearn
                    else "—",
                    _format(r["inertia"] / best if best else None, ".4f"),
                ]
            )
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="segcore bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES)
    )
    parser.add_argument("--quick", action="store_true", help="200,000 rows: under two minutes on 2 cores")
    parser.add_argument("--spark-driver-memory", default="1g")
    parser.add_argument("--workdir", help="where the data goes (default: a temporary folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 200_000
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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
        for engine in [e for e in args.engines.split(",") if e]:
            if not _available(engine):
                print(f"{engine}: not installed, skipped", file=sys.stderr)
                continue
            command = [
                sys.executable,
                "-m",
                "segcore.bench",
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
