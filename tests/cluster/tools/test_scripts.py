"""The project's own scripts: bootstrap, install-chromium, package (a failed build), and test (its
--fast tier and exit codes)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT


def test_bootstrap_refuses_an_old_java(tmp_path):
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    (fake / "java").chmod(0o755)
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "jdk")}
    result = subprocess.run([ROOT / "scripts" / "bootstrap"], capture_output=True, text=True, env=env)
    assert result.returncode == 3
    assert "Spark 4 needs Java 17 or newer, found 11" in result.stderr


def test_package_that_fails_leaves_the_previous_build_in_dist(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    previous = {"segcore-0.1.0-py3-none-any.whl": b"the previous wheel", "segcore-env.tar.gz": b"its env"}
    for name, content in previous.items():
        (dist / name).write_bytes(content)
    env = {**os.environ, "PYTHON": "false"}  # no Python to make the build's venv with
    result = subprocess.run([ROOT / "scripts" / "package", dist], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert {path.name: path.read_bytes() for path in dist.iterdir()} == previous


def _fake_path(tmp_path, apt_get_exit: int, with_chromium: bool) -> Path:
    """A PATH with the tools the script needs and an apt-get (and sudo) that log their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "env"):
        (bin_dir / tool).symlink_to(
            subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        )
    log = tmp_path / "apt.log"
    scripts = {
        "apt-get": f'#!/bin/bash\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {log}\nexit {apt_get_exit}\n',
        "sudo": '#!/bin/bash\nexec "$@"\n',
    }
    if with_chromium:
        scripts["chromium"] = "#!/bin/bash\n"
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _install_chromium(tmp_path, apt_get_exit=0, with_chromium=False):
    env = {"PATH": str(_fake_path(tmp_path, apt_get_exit, with_chromium))}
    result = subprocess.run(
        ["/bin/bash", ROOT / "scripts" / "install-chromium"], capture_output=True, text=True, env=env
    )
    log = tmp_path / "apt.log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_install_chromium_runs_apt_get_non_interactively_when_chromium_is_missing(tmp_path):
    result, calls = _install_chromium(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == ["DEBIAN_FRONTEND=noninteractive -y -q install chromium"]
    assert "installing chromium with apt-get" in result.stdout


def test_install_chromium_leaves_an_installed_chromium_alone(tmp_path):
    result, calls = _install_chromium(tmp_path, with_chromium=True)
    assert result.returncode == 0 and calls == []


def test_install_chromium_that_fails_is_an_environment_error(tmp_path):
    result, calls = _install_chromium(tmp_path, apt_get_exit=100)
    assert result.returncode == 3
    # install, then (the package lists may be stale) update, which fails too
    assert calls == [
        f"DEBIAN_FRONTEND=noninteractive -y -q {step}" for step in ("install chromium", "update")
    ]
    assert "could not install chromium" in result.stderr


def _run_test_script(tmp_path, *args, pytest_exit=0):
    """scripts/test, copied into a repository whose bootstrap, ruff and python log their arguments
    (python exits ``pytest_exit``); the result and the logged calls."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "test", repo / "scripts" / "test")
    log = tmp_path / "calls.log"
    stubs = {
        "scripts/bootstrap": "bootstrap",
        ".venv/bin/ruff": "ruff",
        ".venv/bin/python": "python",
    }
    for path, name in stubs.items():
        code = pytest_exit if name == "python" else 0
        (repo / path).write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\nexit {code}\n')
        (repo / path).chmod(0o755)
    result = subprocess.run([repo / "scripts" / "test", *args], capture_output=True, text=True)
    return result, log.read_text().splitlines()


# One xdist worker per core, at most 4, each given whole modules in the tiers' order.
WORKERS = f"-n {min(os.cpu_count(), 4)} --dist loadfile --no-loadscope-reorder"


def test_test_script_fast_runs_ruff_and_only_the_unit_tier_passing_other_arguments(tmp_path):
    result, calls = _run_test_script(tmp_path, "-k", "kmeans", "--fast", "-x")
    assert result.returncode == 0, result.stderr
    assert calls == ["bootstrap dev", "ruff check .", f"python -m pytest -m unit {WORKERS} -k kmeans -x"]


def test_test_script_without_a_flag_runs_every_tier_with_the_arguments(tmp_path):
    result, calls = _run_test_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == ["bootstrap dev", "ruff check .", f"python -m pytest {WORKERS}"]
    result, calls = _run_test_script(tmp_path / "again", "-x", "tests/cluster")
    assert calls[-1] == f"python -m pytest {WORKERS} -x tests/cluster"


def test_test_script_with_a_number_of_workers_passes_it_alone(tmp_path):
    result, calls = _run_test_script(tmp_path, "-n", "0", "tests/unit")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "python -m pytest -n 0 tests/unit"


@pytest.mark.parametrize("fast", [[], ["--fast"]], ids=["all", "fast"])
def test_test_script_counts_no_collected_tests_as_success_and_passes_failures_on(tmp_path, fast):
    result, _ = _run_test_script(tmp_path / "none", *fast, pytest_exit=5)
    assert result.returncode == 0 and "pytest collected no tests" in result.stderr
    result, _ = _run_test_script(tmp_path / "failed", *fast, pytest_exit=1)
    assert result.returncode == 1
