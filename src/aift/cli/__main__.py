"""`python -m aift.cli`: the same as the `aift` command."""

from aift.cli import main

main()
