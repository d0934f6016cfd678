"""Command-line subcommands on graph and audio files: ``render``, ``draw`` and ``fit``.

Each module follows :mod:`grafx_core.cli`'s contract: a docstring whose first
line is the help, ``add_arguments(parser)`` and ``run(args) -> int``.
"""
