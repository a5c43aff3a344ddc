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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segcore.kmeans import FitSettings

ENGINES = ("sklearn", "local", "spark", "spark-mllib", "dask", "dask-ml")
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


def _measure(engine: str, data: Path, init: np.ndarray, args: argparse.Namespace) -> dict:
    """Run one engine; returns seconds per iteration, init and total seconds, inertia."""
    k, iterations, seed = len(init), args.iterations, args.seed
    columns = [f"x{j}" for j in range(init.shape[1])]
    if engine in ("sklearn", "local"):
        X = _read_numpy(data)
        if engine == "sklearn":
            from sklearn.cluster import KMeans, kmeans_plusplus

            started = time.perf_counter()
            KMeans(k, init=init, n_init=1, max_iter=iterations, tol=0.0, algorithm="lloyd").fit(X)
            per_iteration = (time.perf_counter() - started) / iterations
            started = time.perf_counter()
            kmeans_plusplus(X, k, random_state=seed)
            init_seconds = time.perf_counter() - started
            started = time.perf_counter()
            whole = KMeans(k, n_init=1, max_iter=iterations, tol=0.0, random_state=seed).fit(X)
            total_seconds = time.perf_counter() - started
            best = KMeans(k, n_init=10, max_iter=300, random_state=seed).fit(X).inertia_
            return dict(
                per_iteration=per_iteration,
                init_seconds=init_seconds,
                total_seconds=total_seconds,
                inertia=whole.inertia_,
                best_inertia=best,
            )
        from segcore.kmeans import LocalBlocks, fit

        blocks = LocalBlocks(X)
        given = fit(blocks, k, FitSettings(seed=seed, max_iter=iterations, tol=0.0, init=init))
        whole = fit(blocks, k, FitSettings(seed=seed, max_iter=iterations, tol=0.0))
        return dict(
            per_iteration=float(np.median(given.iteration_seconds)),
            init_seconds=whole.init_seconds,
            total_seconds=whole.fit_seconds,
            inertia=whole.inertia,
        )
    if engine in ("spark", "spark-mllib"):
        spark = _spark(args.spark_driver_memory)
        frame = spark.read.parquet(str(data))
        if engine == "spark":
            from segcore.kmeans.spark_engine import fit_spark

            given = fit_spark(
                frame,
                columns,
                k,
                FitSettings(seed=seed, max_iter=iterations, tol=0.0, init=init),
                dtype="float32",
            )
            started = time.perf_counter()
            whole = fit_spark(
                frame, columns, k, FitSettings(seed=seed, max_iter=iterations, tol=0.0), dtype="float32"
            )
            return dict(
                per_iteration=float(np.median(given.iteration_seconds)),
                init_seconds=whole.init_seconds,
                total_seconds=time.perf_counter() - started,
                inertia=whole.inertia,
            )
        from segcore.config import KMeansConfig
        from segcore.kmeans.engines import fit_mllib

        settings = KMeansConfig(k=k, max_iter=iterations, tol=0.0, seed=seed)
        given = fit_mllib(frame, columns, k, settings, init)
        whole = fit_mllib(frame, columns, k, settings, None)
        return dict(
            per_iteration=given.fit_seconds / max(given.n_iter, 1),
            init_seconds=None,
            total_seconds=whole.fit_seconds,
            inertia=whole.inertia,
        )
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        array = dd.read_parquet(str(data)).to_dask_array(lengths=True).persist()
        if engine == "dask":
            from segcore.kmeans.dask_engine import fit_dask

            given = fit_dask(
                array,
                k,
                FitSettings(seed=seed, max_iter=iterations, tol=0.0, init=init),
                client=client,
                dtype="float32",
            )
            whole = fit_dask(
                array, k, FitSettings(seed=seed, max_iter=iterations, tol=0.0), client=client, dtype="float32"
            )
            return dict(
                per_iteration=float(np.median(given.iteration_seconds)),
                init_seconds=whole.init_seconds,
                total_seconds=whole.fit_seconds,
                inertia=whole.inertia,
            )
        from dask_ml.cluster import KMeans as DaskMLKMeans

        started = time.perf_counter()
        given = DaskMLKMeans(n_clusters=k, init=init, max_iter=iterations, tol=0.0).fit(array)
        per_iteration = (time.perf_counter() - started) / max(given.n_iter_, 1)
        started = time.perf_counter()
        whole = DaskMLKMeans(
            n_clusters=k, init="k-means||", max_iter=iterations, tol=0.0, random_state=seed
        ).fit(array)
        return dict(
            per_iteration=per_iteration,
            init_seconds=None,
            total_seconds=time.perf_counter() - started,
            inertia=float(whole.inertia_),
        )


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
        result = _measure(args.worker, folder / "data", np.load(folder / "init.npy"), args)
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
