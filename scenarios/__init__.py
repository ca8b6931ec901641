"""scenarios: scenario data (the default ``xiaohe``), loading, and the what-if engine.

- :func:`scenarios.load` — a district from a scenario name, folder or ``synthetic-Nx``.
- :func:`scenarios.run` — simulate it (SimPy over the shared twin, Mesa demand), with
  replications; results have ``.kpis``, ``.events`` and ``.to_pandas()``.
- :mod:`scenarios.theory` — Erlang B/C/A, staffing rules, M_t/M/∞, the hypercube model.
- :mod:`scenarios.presets` — classical systems run by the normal engine.

Importing this package loads no simulation framework until a run needs it.
"""

from scenarios.loader import builtin_names, load, load_cached


def run(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Simulate a scenario: see :func:`scenarios.simulate.run`."""
    from scenarios.simulate import run as _run

    return _run(*args, **kwargs)


__all__ = ["builtin_names", "load", "load_cached", "run"]
