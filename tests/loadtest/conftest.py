"""The load tools' tests: the repository root on ``sys.path``, so ``loadtest.bench`` imports
as the package that ``python -m loadtest.bench`` runs."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
