"""Static checks run with the tests: ruff on the project, mypy --strict on twin, scenarios, actors, api and the CLI
(pyproject.toml [tool.mypy] files)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("ruff", path=str(Path(sys.executable).parent)) is None, reason="ruff not installed")
def test_ruff() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "twin", "scenarios", "actors", "api", "streetbrain", "detection",
                          "tests", "benchmarks", "tools"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_on_the_project() -> None:
    pytest.importorskip("mypy")
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
