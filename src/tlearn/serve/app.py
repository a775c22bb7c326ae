"""The FastAPI application of ``tlearn serve``: ``/predict``, ``/health``, ``/model`` and the page at ``/``."""

from __future__ import annotations

import hashlib
import socket
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from ..errors import DataError, RunError, one_line
from ..inference import top_k as best_k
from ..messages import say
from ..runs.record import RunRecord, read_record
from ..runs.spec import MODEL_FILE, LoadedRun, load_run
from .predictor import MAX_BATCH, Predictor
from .uploads import read_upload

DEFAULT_TOP_K = 5


def model_id(run: LoadedRun) -> str:
    """The run directory's name and the start of its weights' SHA-256: names this exact model."""
    digest = hashlib.sha256()
    with open(run.run_dir / MODEL_FILE, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{run.run_dir.name}@{digest.hexdigest()[:12]}"


def headline_metrics(record: Optional[RunRecord]) -> dict:
    """What ``/model`` reports of the run's metrics.json (the rest is per-class detail and history);
    {} when the run has no readable record."""
    if record is None:
        return {}
    return {
        "test_accuracy": record.test_accuracy,
        "test_samples": record.test_samples,
        "train_samples": record.train_samples,
        "epochs": record.epochs,
        "seed": record.seed,
        "macro_f1": record.macro_f1,
        "tta_views": record.tta_views,
    }


def model_info(run: LoadedRun, identity: str, max_upload_mb: float) -> dict:
    """What ``GET /model`` answers: classes, input, preprocessing and the run's test metrics."""
    prep = run.preprocessing
    return {
        "id": identity,
        "backbone": run.spec.backbone,
        "classes": run.classes,
        "input_size": [prep.in_chans, prep.image_size, prep.image_size],
        "input_mode": prep.input_mode,
        "preprocessing": prep.to_dict(),
        "metrics": headline_metrics(read_record(run.run_dir)),
        "max_upload_mb": max_upload_mb,
    }


def create_app(
    run_dir: str | Path,
    max_upload_mb: float = 10.0,
    default_top_k: int = DEFAULT_TOP_K,
    max_batch: int = MAX_BATCH,
) -> FastAPI:
    """The application serving ``run_dir`` (loaded now, so a bad run fails before the server starts)."""
    run = load_run(run_dir)
    predictor = Predictor(run, max_batch)
    identity = model_id(run)
    info = model_info(run, identity, max_upload_mb)
    max_bytes = int(max_upload_mb * 2**20)
    page = resources.files("tlearn.serve").joinpath("page.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        predictor.start()
        try:
            yield
        finally:
            predictor.stop()

    app = FastAPI(title=f"tlearn: {identity}", version="1", lifespan=lifespan)
    app.state.model_id = identity

    @app.get("/health")
    async def health() -> dict:
        """Liveness: answers while the model works on other requests."""
        return {"status": "ok", "model": identity}

    @app.get("/model")
    async def model() -> dict:
        """The served model: classes, input size, preprocessing and its test metrics."""
        return info

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        """The page: choose or drop an image, see the predicted class and the top-k bars."""
        return page

    @app.post("/predict")
    async def predict(request: Request, top_k: int = Query(default_top_k, ge=1, le=1000)) -> dict:
        """Classify one image, sent as multipart (field ``file``) or as the raw body; top-k classes."""
        data = await read_upload(request, max_bytes)
        try:
            probabilities = await predictor.classify(data)
        except DataError as err:  # not an image, truncated, too many pixels …
            raise HTTPException(422, one_line(err)) from None
        ranked = best_k(probabilities.unsqueeze(0), run.classes, top_k)[0]
        return {
            "model": identity,
            "label": ranked[0][0],
            "probability": ranked[0][1],
            "top_k": [{"label": label, "probability": p} for label, p in ranked],
        }

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free one); ``RunError`` when that is refused."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        raise RunError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, max_upload_mb: float = 10.0) -> None:
    """Run the server until Ctrl-C (uvicorn, one process)."""
    import uvicorn

    app = create_app(run_dir, max_upload_mb)
    # Bound here rather than by uvicorn, so a port in use is one line instead of a log and exit code 1.
    sock = listening_socket(host, port)
    where = f"[{host}]" if ":" in host else host
    say(f"Serving {app.state.model_id} on http://{where}:{sock.getsockname()[1]}/ (Ctrl-C stops)")
    uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
