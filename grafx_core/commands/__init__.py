"""Command-line subcommands that work on graph files: ``render`` and ``draw``.

Each module follows :mod:`grafx_core.cli`'s contract: a docstring whose first
line is the help, ``add_arguments(parser)`` and ``run(args) -> int``.
"""
