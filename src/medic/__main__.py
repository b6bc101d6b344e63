"""`python -m medic` runs the command line."""

from medic.cli import main

main()
