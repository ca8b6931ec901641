"""`twin` is the pure core: importing it loads no framework, and it never reads the clock."""

import ast
import subprocess
import sys
from pathlib import Path

FRAMEWORKS = ("ray", "simpy", "mesa", "fastapi", "starlette", "torch", "pydeck", "uvicorn")
TWIN = Path(__file__).resolve().parent.parent / "twin"


def test_import_twin_loads_no_framework() -> None:
    code = ("import sys, twin, twin.geo, twin.assets, twin.staff, twin.catalog, twin.workflow, "
            "twin.policy, twin.district\n"
            f"print(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_twin_never_reads_the_wall_clock() -> None:
    banned = {("time", "time"), ("time", "monotonic"), ("datetime", "now"), ("datetime", "utcnow"),
              ("date", "today"), ("time", "perf_counter")}
    found = []
    for path in TWIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in banned:
                    found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []
