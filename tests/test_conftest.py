"""The suite's own rule: under CI nothing may skip (tests/conftest.py turns a skip into a failure)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = '''
import pytest

pytest.importorskip("a_module_that_is_not_installed")  # a whole module skipped at collection


def test_never_runs():
    pass
'''

SKIPPING_ONE = '''
import pytest


def test_runs():
    pass


def test_skips():
    pytest.skip("ffmpeg is missing")


@pytest.mark.xfail(reason="a known failure", strict=True)
def test_expected_failure():
    assert False
'''


def inner_pytest(tmp_path: Path, ci: str | None, source: str) -> subprocess.CompletedProcess:
    """Run pytest on a copy of this suite's conftest and one test file (in a folder of its own)."""
    tmp_path = tmp_path / str(len(list(tmp_path.iterdir())))
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_under_ci(tmp_path, ci):
    result = inner_pytest(tmp_path, ci, SKIPPING_ONE)
    assert result.returncode == 1, result.stdout
    assert "skipped under CI, where nothing may skip: ffmpeg is missing" in result.stdout
    assert "1 failed, 1 passed, 1 xfailed" in result.stdout, result.stdout
    module = inner_pytest(tmp_path, ci, SKIPPING)
    assert module.returncode != 0, module.stdout
    assert "skipped under CI, where nothing may skip" in module.stdout
    assert "a_module_that_is_not_installed" in module.stdout


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_a_skip_is_a_skip_elsewhere(tmp_path, ci):
    result = inner_pytest(tmp_path, ci, SKIPPING_ONE)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in result.stdout, result.stdout
    module = inner_pytest(tmp_path, ci, SKIPPING)
    assert module.returncode == pytest.ExitCode.NO_TESTS_COLLECTED and "1 skipped" in module.stdout, module.stdout
