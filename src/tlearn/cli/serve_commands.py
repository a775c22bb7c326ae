"""``tlearn serve`` and ``tlearn push``: a trained run as a web service, or on the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app

RUN_DIR = typer.Argument(..., help="A finished run directory.")


@app.command()
def serve(
    run_dir: Path = RUN_DIR,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    max_upload_mb: float = typer.Option(
        10.0, "--max-upload-mb", min=0.001, help="Largest image accepted, in MB (2^20 bytes); larger gets 413."
    ),
) -> None:
    """Serve a trained run: JSON API (POST /predict, GET /model, GET /health) and a web page at /.

    Example: tlearn serve runs/my-run --port 8000 ; then open http://127.0.0.1:8000/ or
    curl -F file=@digit.png http://127.0.0.1:8000/predict
    """
    from ..errors import RunError
    from ..serve import missing_package

    missing = missing_package()
    if missing:
        raise RunError(f"tlearn serve needs the '{missing}' package: pip install 'tlearn[serve]'")
    from ..serve.app import serve as run_server

    run_server(run_dir, host, port, max_upload_mb)


@app.command()
def push(
    run_dir: Path = RUN_DIR,
    repo_id: str = typer.Argument(..., help="Hugging Face model repository, ORG/NAME (created when missing)."),
    private: bool = typer.Option(False, "--private", help="Create the repository as private."),
) -> None:
    """Upload a run to the Hugging Face Hub as a timm model folder (config, weights, model card).

    The token is huggingface_hub's own (HF_TOKEN, or 'hf auth login'). Others then load it with
    timm.create_model("hf-hub:ORG/NAME", pretrained=True) or fine-tune it: tlearn train --backbone hf-hub:ORG/NAME

    Example: tlearn push runs/my-run my-org/mnist-lite0
    """
    import warnings

    from ..hub import push_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = push_run(run_dir, repo_id, private)
    print(f"Pushed {run_dir} to {url}")
