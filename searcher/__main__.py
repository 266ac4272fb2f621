"""``python -m searcher``: the command line, as the ``searcher`` script runs it."""
from .interfaces.cli import main

main()
