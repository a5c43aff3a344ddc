"""The benchmark runs end to end and prints comparable columns: every engine timed the same way, with
ratios that are the ratios of the printed figures (the timings themselves are for the README, not
asserted here)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HEADER = [
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
]
ITERATIONS = 5


def _bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "segcore", "bench", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def bench_table(tmp_path_factory) -> dict[str, list[str]]:
    workdir = tmp_path_factory.mktemp("bench")
    engines = "sklearn,local,spark,cuml,gpu"
    result = _bench(
        "--rows", 4000, "--iterations", ITERATIONS, "--repeats", 1, "--engines", engines, "--workdir", workdir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("after one untimed warm-up fit, s/iter = (t(I) - t(1)) / (n(I) - n(1))")
    rows = [line.split(" | ") for line in lines if " | " in line]
    assert rows[0] == HEADER
    return {row[0]: row for row in rows[2:]}


def _ratio(printed: str) -> float:
    assert printed.endswith("×"), printed
    return float(printed.removesuffix("×"))


def test_bench_ratio_columns_are_the_ratios_of_the_printed_figures(bench_table):
    assert {"sklearn", "local", "spark"} <= set(bench_table)
    column = {name: i for i, name in enumerate(HEADER)}
    sklearn = bench_table["sklearn"]
    for engine in ("sklearn", "local", "spark"):
        row = bench_table[engine]
        assert len(row) == len(HEADER), row
        assert 2 <= int(row[column["iterations"]]) <= ITERATIONS
        for figure, ratio in (("s/iter", "s/iter × sklearn"), ("total s", "total × sklearn")):
            expected = float(row[column[figure]]) / float(sklearn[column[figure]])
            assert _ratio(row[column[ratio]]) == pytest.approx(expected, abs=0.005), (engine, figure)
        assert float(row[column["inertia/best10"]]) < 1.01  # within 1% of scikit-learn's best of 10
    assert _ratio(sklearn[column["s/iter × sklearn"]]) == 1.0


@pytest.mark.parametrize(
    ("engine", "module", "install"),
    [("cuml", "cuml", "pip install 'segcore[gpu]'"), ("gpu", "cupy", "pip install cupy-cuda12x")],
)
def test_bench_has_a_gpu_row_measured_or_saying_why_not(bench_table, engine, module, install):
    row = bench_table[engine]
    if importlib.util.find_spec(module) is None:
        assert row[4].startswith(f"skipped: {module} not importable ({install}"), row
    else:
        assert len(row) == len(HEADER) and float(row[HEADER.index("inertia/best10")]) < 1.01, row


def test_bench_refuses_an_unknown_engine_naming_it(tmp_path):
    result = _bench("--engines", "sklearn,sklaern", "--workdir", tmp_path)
    assert result.returncode == 2
    assert "--engines: unknown sklaern; choose from sklearn," in result.stderr
    assert not list(tmp_path.iterdir())  # refused before writing any data
