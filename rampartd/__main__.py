"""`python -m rampartd` runs the command-line interface."""

from rampartd.cli import main

main()
