"""``python -m metapbt``: the command-line interface."""

from metapbt.cli import main

main()
