"""``tlearn serve``: a trained run behind a JSON API and a small web page (FastAPI + uvicorn).

``app.create_app(run_dir)`` builds the application: ``POST /predict`` (an image as a multipart
upload, field ``file``, or as the raw request body) answers the top-k classes and probabilities;
``GET /health``, ``GET /model`` and ``GET /`` (the page). Images go through the same code as
``tlearn predict`` (``read_image`` then ``predict_images``). ``uploads`` turns a request into
image bytes or a 4xx answer; ``predictor`` runs the model in one worker thread, off the event loop.
"""

from __future__ import annotations

import importlib.util

# Python modules of the `serve` extra (python-multipart installs as python_multipart, formerly multipart).
MODULES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python-multipart": ("python_multipart", "multipart")}


def missing_package() -> str | None:
    """The first package of the ``serve`` extra that is not installed, or None."""
    for package, modules in MODULES.items():
        names = modules if isinstance(modules, tuple) else (modules,)
        if not any(importlib.util.find_spec(name) is not None for name in names):
            return package
    return None
