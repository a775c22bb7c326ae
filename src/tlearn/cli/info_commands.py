"""``tlearn backbones`` and ``tlearn presets``: what is available."""

from __future__ import annotations

from typing import Optional

import typer

from .app import app


@app.command()
def backbones(
    offline: bool = typer.Option(
        False, "--offline", help="Only those whose weights are available right now without internet."
    ),
    timm: Optional[str] = typer.Option(
        None, "--timm", help="Also list timm models matching this name or pattern (e.g. 'convnext*')."
    ),
) -> None:
    """List known backbones: parameters, default image size, and whether weights are available offline.

    Example: tlearn backbones --offline ; tlearn backbones --timm 'efficientnet_b*'
    """
    from rich.console import Console
    from rich.table import Table

    from ..models.catalog import catalog

    table = Table(show_lines=False)
    table.add_column("backbone", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("params (M)", justify="right")
    table.add_column("size", justify="right")
    table.add_column("offline", no_wrap=True)
    table.add_column("weights file / hub id", overflow="fold")
    for e in catalog(timm, offline):
        params = f"{e.params_millions:.1f}" if e.params_millions is not None else "?"
        table.add_row(e.name, e.source, params, str(e.image_size), "yes" if e.offline else "no", e.where)
    Console().print(table)
    print("Any timm model works as timm/<name>; any local state dict as --weights PATH.")


@app.command()
def presets() -> None:
    """List the shipped presets with a one-line description each."""
    from rich.console import Console
    from rich.table import Table

    from ..config import preset_summaries

    table = Table("preset", "description", show_lines=False)
    for name, summary in preset_summaries().items():
        table.add_row(name, summary)
    Console().print(table)
