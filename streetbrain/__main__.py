"""``python -m streetbrain``."""

from streetbrain.cli import main

main()
