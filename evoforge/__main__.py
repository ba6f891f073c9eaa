"""``python -m evoforge`` runs the command-line interface."""

from evoforge.cli import main

main()
