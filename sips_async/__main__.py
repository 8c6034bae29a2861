"""``python -m sips_async`` runs the ``sips-async`` command."""

from .cli import main

raise SystemExit(main())
