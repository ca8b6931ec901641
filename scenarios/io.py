"""Writing simulation results to disk: the events table, the KPIs and the HTML report.

    >>> from scenarios.io import write_result
    >>> paths = write_result(result, Path("out"), district=district)

Kept apart from :mod:`scenarios.simulate` (which computes results) and
:mod:`scenarios.report` (which renders a page as a string), so that neither needs the
other, as OSMnx keeps its file output in ``io.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.report import html_report
from scenarios.simulate import SimulationResult
from twin.district import District


def write_result(result: SimulationResult, out: Path, *, district: District | None = None,
                 map_href: str | None = None) -> dict[str, Path]:
    """Write ``events.csv``, ``kpis.json`` and an offline ``report.html`` into a folder.

    Args:
        result: The simulation to write.
        out: Folder to write into (created if missing; existing files are replaced).
        district: The simulated district, for the report's map and attribution.
        map_href: A link from the report to an interactive map written beside it.

    Returns:
        The path of each file, by kind: ``events``, ``kpis`` and ``report``.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"events": out / "events.csv", "kpis": out / "kpis.json", "report": out / "report.html"}
    result.to_pandas().to_csv(paths["events"], index=False)
    paths["kpis"].write_text(json.dumps(result.summary(), ensure_ascii=False, indent=2) + "\n")
    paths["report"].write_text(html_report(result, district=district, map_href=map_href), encoding="utf-8")
    return paths
