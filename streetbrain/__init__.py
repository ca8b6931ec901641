"""streetbrain: the command line and the glue between the packages.

See :mod:`twin` (the domain model), :mod:`scenarios` (scenario data and the what-if
engine), :mod:`actors` (the live twin), :mod:`api` (HTTP), :mod:`detection` and :mod:`viz`.
"""

from twin import __version__

__all__ = ["__version__"]
