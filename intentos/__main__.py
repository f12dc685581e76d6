"""`python -m intentos`: the same as the `intentos` command."""

from intentos.cli import main

main()
