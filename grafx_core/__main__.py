"""``python -m grafx_core``: the same as the ``grafx-core`` command."""

from .cli import main

raise SystemExit(main())
