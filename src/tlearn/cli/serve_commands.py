"""``tlearn serve`` and ``tlearn push``: a trained run as a web service, or on the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app

RUN_DIR = typer.Argument(..., help="A finished run directory.")


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
