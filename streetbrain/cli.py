"""The ``streetbrain`` command line.

Errors in input (a bad scenario file, an unknown name) print one clear line naming the file,
the field and the reason, and exit with status 2; never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from twin.errors import TwinError

app = typer.Typer(
    name="streetbrain",
    help="A digital twin of a city subdistrict's street governance: live dispatch and "
         "what-if simulation on one model. The default scenario is 'xiaohe' (Xiaohe "
         "subdistrict, Hangzhou).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scenario_app = typer.Typer(help="Inspect and validate scenarios (district, staff, catalog).",
                           no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")

NameOrPath = Annotated[str, typer.Argument(
    help="A built-in scenario name (xiaohe), synthetic-10x / synthetic-100x, or a folder "
         "holding a scenario.toml.", show_default=False)]


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _load(name_or_path: str) -> Any:
    from scenarios.loader import load

    try:
        return load(name_or_path)
    except TwinError as exc:
        _fail(exc)


@app.command()
def version() -> None:
    """Print the version."""
    from twin import __version__

    typer.echo(f"streetbrain {__version__}")


@scenario_app.command("list")
def scenario_list() -> None:
    """List the built-in scenarios."""
    from scenarios.loader import builtin_names

    for name in builtin_names():
        typer.echo(name)
    typer.echo("synthetic-<N>x  (generated: N times the size of xiaohe, e.g. synthetic-100x)")


@scenario_app.command("show")
def scenario_show(
    name_or_path: NameOrPath = "xiaohe",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load a scenario, validate it, and print its summary (counts, staff, shifts)."""
    district = _load(name_or_path)
    summary = district.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    notes = district.notes
    boundary = notes.get("boundary", {}) if isinstance(notes, dict) else {}
    lines = [
        f"{summary['title']}  [{summary['name']}]",
        f"  area        {summary['area_km2']} km² inside the study boundary"
        + (f" (official: {summary['stated_area_km2']} km²)" if summary["stated_area_km2"] else ""),
    ]
    if boundary.get("approximation"):
        lines.append(f"              boundary is an APPROXIMATION along {boundary.get('follows', 'real streets')}")
    lines += [
        f"  population  {summary['population']:,}",
        f"  regions     {summary['areas']} areas, {summary['communities']} communities, "
        f"{summary['grids']} grids",
        f"  roads       {summary['roads']} patrolled segments ({summary['road_km']} km); routing graph "
        f"{summary['routing_segments']} segments, {summary['routing_nodes']} junctions",
        f"  assets      {summary['cameras']} cameras, {summary['shops']} shops, "
        f"{summary['sensors']} sensors, {summary['venues']} venues",
        "  shifts      " + ", ".join(f"{s['code']} {s['start']}-{s['end']}" for s in summary["shift_plan"]),
        f"  staff       {summary['members']} members in {summary['squads']} squads:",
    ]
    lines += [f"                {n:4d}  {role}" for role, n in summary["members_by_role"].items()]
    lines.append(f"  catalog     {summary['scenarios']} application scenarios in "
                 f"{summary['categories']} categories:")
    lines += [f"                {n:4d}  {cat}" for cat, n in summary["scenarios_by_category"].items()]
    attribution = (notes.get("roads") or {}).get("attribution") if isinstance(notes, dict) else None
    if attribution:
        lines.append(f"  data        {attribution}")
    typer.echo("\n".join(lines))


@scenario_app.command("validate")
def scenario_validate(name_or_path: NameOrPath) -> None:
    """Validate a scenario folder; print OK or the first problem (exit status 2)."""
    district = _load(name_or_path)
    typer.echo(f"OK: {district.name} ({len(district.catalog)} scenarios, "
               f"{len(district.roster.members)} members, {len(district.regions.grids)} grids)")


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m streetbrain``."""
    sys.exit(app())
