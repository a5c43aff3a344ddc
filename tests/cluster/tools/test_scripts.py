"""The project's own scripts."""

import os
import subprocess
from pathlib import Path

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
