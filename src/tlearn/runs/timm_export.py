"""Export a run as a timm model folder: ``config.json``, ``model.safetensors`` and a ``README.md`` model card.

``timm.create_model("local-dir:DIR", pretrained=True)`` (or ``hf-hub:ORG/NAME`` once pushed)
rebuilds the trained classifier, and ``timm.data.resolve_data_config`` + ``create_transform``
prepare an image the way tlearn does. tlearn's linear head (average pool, dropout, linear) is
timm's own classifier head, so the folder holds a plain timm model: timm writes the folder
(``save_for_hf``), and the export is loaded back through timm and compared with the run's model
before it is reported as done. Torchvision backbones and the ``mlp`` head have no timm form;
they export to ONNX or TorchScript.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import torch

from ..errors import RunError, one_line
from .export import PARITY_TOLERANCE, _sample_inputs
from .model_card import CARD_FILE, CONFIG_COPY, config_for_card, model_card
from .spec import LoadedRun

# Backbone sources built by timm (backbones.BackboneInfo.source); the others have no timm form.
TIMM_SOURCES = ("package", "timm", "local-dir", "hf-hub")
FOLDER_FILES = ("config.json", "model.safetensors", CARD_FILE, CONFIG_COPY)
OTHER_FORMATS = "use --format onnx or --format torchscript instead"


def timm_architecture(run: LoadedRun) -> str:
    """The timm architecture of a run's backbone; ``RunError`` when the run has no timm form."""
    backbone = run.model.backbone
    if backbone.info.source not in TIMM_SOURCES:
        raise RunError(
            f"{run.spec.backbone} is a torchvision backbone, which timm cannot load; {OTHER_FORMATS} "
            f"(or train with --backbone timm/<name>)"
        )
    if run.spec.head != "linear":
        raise RunError(f"the {run.spec.head} head has no timm equivalent; {OTHER_FORMATS}")
    return str(backbone.model.pretrained_cfg["architecture"])


def to_timm(run: LoadedRun) -> torch.nn.Module:
    """The run's classifier as a plain timm model (eval mode): the backbone's weights plus the
    linear head as timm's classifier."""
    import timm

    arch = timm_architecture(run)
    prep = run.preprocessing
    # The source checkpoint's tag and license describe ImageNet weights, not this model.
    overlay = {"tag": None, "license": None}
    model = timm.create_model(
        arch, pretrained=False, num_classes=len(run.classes), in_chans=prep.in_chans, pretrained_cfg_overlay=overlay
    )
    state = dict(run.model.backbone.model.state_dict())
    classifier = model.pretrained_cfg["classifier"]
    state[f"{classifier}.weight"] = run.model.head.fc.weight.detach()
    state[f"{classifier}.bias"] = run.model.head.fc.bias.detach()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RunError(
            f"cannot express this {arch} model in timm's layout ({one_line(err, 160)}); {OTHER_FORMATS}"
        ) from None
    return model.eval()


def data_config(run: LoadedRun) -> dict:
    """timm's preprocessing settings equal to the run's: photos are resized and centre-cropped by
    ``crop_pct``; other images are resized whole to the square input ("squash")."""
    prep = run.preprocessing
    return {
        "input_size": (prep.in_chans, prep.image_size, prep.image_size),
        "mean": tuple(prep.mean),
        "std": tuple(prep.std),
        "interpolation": "bilinear",
        "crop_pct": prep.crop_pct or 1.0,
        "crop_mode": "center" if prep.crop_pct else "squash",
    }


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise RunError(f"--out {output} is a file; give a folder for --format timm")
    if output.is_dir():
        strangers = [p.name for p in output.iterdir() if p.name not in FOLDER_FILES]
        if strangers:
            raise RunError(f"--out {output} holds other files ({strangers[0]}, …); give a new or empty folder")
    if not output.parent.exists():
        raise RunError(f"cannot write {output}: folder {output.parent} does not exist")


def _verify(run: LoadedRun, folder: Path) -> float:
    """Load the written folder through timm and compare its logits with the run's model."""
    import timm

    reloaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    sample = _sample_inputs(run)
    with torch.inference_mode():
        return float((reloaded(sample) - run.model.eval()(sample)).abs().max())


def export_timm(run: LoadedRun, output: Path, hub_id: Optional[str] = None) -> dict:
    """Write a timm model folder and check it against the run's model; returns ``{max_abs_diff, ...}``.

    ``hub_id`` (``ORG/NAME``): the folder is going to the Hugging Face Hub, so the model card
    loads it from there.
    """
    from timm.models import save_for_hf

    output = Path(output)
    _check_output(output)
    model = to_timm(run)
    config = config_for_card(run.run_dir)
    tmp = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_for_hf(
            model,
            str(tmp),
            model_config={"label_names": run.classes},
            data_config=data_config(run),
            safe_serialization=True,
        )
        source = f"hf-hub:{hub_id}" if hub_id else f"local-dir:{output.name}"
        (tmp / CARD_FILE).write_text(model_card(run, source), encoding="utf-8")
        (tmp / CONFIG_COPY).write_text(config, encoding="utf-8")
        for path in tmp.iterdir():  # safetensors writes 0600; a folder to share is readable by all
            path.chmod(0o644)
        diff = _verify(run, tmp)
        if diff > PARITY_TOLERANCE:
            raise RunError(f"the timm folder does not match the PyTorch model (max abs diff {diff:.2e}); not written")
        shutil.rmtree(output, ignore_errors=True)
        tmp.replace(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    written = json.loads((output / "config.json").read_text())
    return {"format": "timm", "output": str(output), "max_abs_diff": diff, "architecture": written["architecture"]}
