"""The research notebooks in notebooks/ run top to bottom without an error.

Each notebook is executed in a ``python3`` Jupyter kernel (the venv's: ``.venv/bin/python -m
ipykernel install --sys-prefix``) from the repository root. Needs ``nbclient``, ``nbformat`` and
``ipykernel``; skipped where they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("staffing_whatif.ipynb", "reform_comparison.ipynb")


def _read(name: str) -> Any:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install nbformat)")
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


def _parameter_cell(nb: Any) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return i
    return None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_documented_and_parameterised(name: str) -> None:
    nb = _read(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("#"), "first cell: a markdown title"
    assert "how long" in first.source.lower(), "first cell says how long the notebook takes"
    i = _parameter_cell(nb)
    assert i is not None, "a code cell tagged 'parameters'"
    assert "DAYS =" in nb.cells[i].source and "REPLICATIONS =" in nb.cells[i].source
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "no outputs stored"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.fixture
def python3_kernel(monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``python3`` kernel, preferring this interpreter's own kernelspec over a user-wide one."""
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install nbclient)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install ipykernel)")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(
        p for p in (str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")) if p))
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: run .venv/bin/python -m ipykernel install --sys-prefix")
    python = shutil.which(spec.argv[0]) or spec.argv[0]
    probe = subprocess.run([python, "-c", "import scenarios, ipykernel"], capture_output=True, cwd=ROOT)
    if probe.returncode != 0:
        pytest.skip(f"the 'python3' kernel ({python}) cannot import scenarios and ipykernel: "
                    "run .venv/bin/python -m ipykernel install --sys-prefix")
    return "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name: str, python3_kernel: str) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = _read(name)
    client = NotebookClient(nb, timeout=600, kernel_name=python3_kernel,
                            resources={"metadata": {"path": str(ROOT)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name}: a cell raised:\n{exc}")
    elapsed = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}" if errors else ""
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code"), "every code cell ran"
    print(f"{name}: {elapsed:.1f} s")
