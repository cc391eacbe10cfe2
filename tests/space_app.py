"""Import the Gradio Space in spaces/ds2-demo as the Space runs it (its folder first on ``sys.path``)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

SPACE_DIR = Path(__file__).resolve().parents[1] / "spaces" / "ds2-demo"
MODULES = ("space_data", "space_pipeline", "app")


@contextlib.contextmanager
def space_modules() -> Iterator[SimpleNamespace]:
    """``data``, ``pipeline`` and ``app``: the Space's modules, removed from ``sys.modules`` afterwards."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    clashes = [m for m in MODULES if m in sys.modules]
    if clashes:
        raise RuntimeError(f"modules {clashes} are already imported from elsewhere; the Space's would be shadowed")
    sys.path.insert(0, str(SPACE_DIR))
    try:
        data, pipeline, app = (importlib.import_module(m) for m in MODULES)
        yield SimpleNamespace(data=data, pipeline=pipeline, app=app)
    finally:
        sys.path.remove(str(SPACE_DIR))
        for name in MODULES:
            sys.modules.pop(name, None)
