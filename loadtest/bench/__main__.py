"""``python -m loadtest.bench``: see :mod:`loadtest.bench.cli`."""

from .cli import main

raise SystemExit(main())
