#!/usr/bin/env python
"""`segcore train` wall time over a k sweep, BEFORE (an older commit) and AFTER (this tree), side by
side in one run.

It makes (once, kept in --workdir) a sample lake of --customers and its feature table with this
tree's code, checks the older commit out into a temporary `git worktree`, then runs `segcore train`
of each tree on that same feature table, alternately, --repeat times, each run in a process of its
own with a fresh MLflow store, and prints a table: wall time of the train process, the fit of every
k and the profile (from segcore's step log lines), the chosen k, and the ratio before/after.

    scripts/bench_sweep.py --customers 200000 --before 63526f1

Run it on a quiet machine: it starts Spark (local[*]) several times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"INFO segcore: train: (?P<what>[^\n]*?) done in (?P<seconds>[\d.]+) s")
CHOSEN = re.compile(r"segments as of \S+: k=(?P<k>\d+)")


def _segcore(tree: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "segcore.cli.commands", *args]
    done = subprocess.run(
        command, cwd=cwd, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} (PYTHONPATH={tree}) failed:\n{done.stderr[-3000:]}")
    return done


def _prepare_data(workdir: Path, customers: int, seed: int, env: dict[str, str]) -> None:
    if not (workdir / "lake").exists():
        _segcore(
            ROOT,
            "generate",
            "--out",
            str(workdir / "lake"),
            "--customers",
            str(customers),
            "--seed",
            str(seed),
            cwd=workdir,
            env=env,
        )
    if not (workdir / "features").exists():
        _segcore(ROOT, "features", "--set", f"workdir={workdir}", cwd=workdir, env=env)


def _train(tree: Path, workdir: Path, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """One `segcore train` of ``tree`` with a fresh MLflow store; its wall time and steps."""
    run = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    settings = [
        f"workdir={workdir}",
        f"mlflow.tracking_uri=sqlite:///{run}/mlflow.db",
        f"kmeans.engine={args.engine}",
        f"kmeans.k={{min: {args.k_min}, max: {args.k_max}}}",
    ]
    started = time.perf_counter()
    done = _segcore(tree, "train", "--force", *[f"--set={s}" for s in settings], cwd=run, env=env)
    wall = time.perf_counter() - started
    steps = [(m["what"], float(m["seconds"])) for m in STEP.finditer(done.stderr)]
    shutil.rmtree(run)
    return {
        "wall": wall,
        "fit": sum(seconds for what, seconds in steps if what.startswith("fit k=")),
        "fit_steps": sum(what.startswith("fit k=") for what, _ in steps),
        "profile": sum(seconds for what, seconds in steps if what == "profile segments"),
        "k": int(CHOSEN.search(done.stdout)["k"]),
    }


def _row(name: str, commit: str, runs: list[dict]) -> list[str]:
    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    walls = ", ".join(f"{run['wall']:.1f}" for run in runs)
    return [
        name,
        commit,
        f"{median('wall'):.1f} ({walls})",
        f"{median('fit'):.1f}",
        str(runs[0]["fit_steps"]),
        f"{median('profile'):.1f}",
        str(runs[0]["k"]),
    ]


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="63526f1", help="commit to compare with (default 63526f1)")
    parser.add_argument("--after", help="commit to measure (default: this working tree)")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine", default="spark")
    parser.add_argument("--k-min", type=int, default=3)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="train runs per tree (median reported)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segcore-bench-sweep")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYSPARK_PYTHON": sys.executable}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    _prepare_data(workdir, args.customers, args.seed, env)
    trees = {"before": args.before, "after": args.after}
    commits = {name: _git("rev-parse", "--short", commit or "HEAD") for name, commit in trees.items()}
    scratch = Path(tempfile.mkdtemp(prefix="segcore-bench-trees-"))
    checked_out = [name for name, commit in trees.items() if commit]
    paths = {name: scratch / name if name in checked_out else ROOT for name in trees}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        for name in checked_out:
            _git("worktree", "add", "--detach", str(paths[name]), commits[name])
        for _ in range(args.repeat):
            for name in trees:
                runs[name].append(_train(paths[name], workdir, args, env))
    finally:
        for name in checked_out:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(paths[name])], check=False
            )
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"segcore train, {args.customers:,} customers, kmeans.engine={args.engine}, k from {args.k_min} to "
        f"{args.k_max}, {args.repeat} run(s) each (median; every run in brackets)"
    )
    header = ["version", "commit", "train wall s", "fit s (every k)", "fit steps", "profile s", "chosen k"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name in trees:
        print(" | ".join(_row(name, commits[name] + ("" if trees[name] else " (working tree)"), runs[name])))
    walls = {name: statistics.median(run["wall"] for run in runs[name]) for name in trees}
    print(f"before / after (train wall): {walls['before'] / walls['after']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
