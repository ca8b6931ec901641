"""scenarios: scenario data (the default ``xiaohe``), loading and validation.

The what-if engine (SimPy) lands here too (issue #3). Load a district with
:func:`scenarios.load`.
"""

from scenarios.loader import builtin_names, load, load_cached

__all__ = ["builtin_names", "load", "load_cached"]
