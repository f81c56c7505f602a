"""`python -m orthojac <command> …`: the `orthojac` command (orthojac.cli)."""

from .cli import main

main()
