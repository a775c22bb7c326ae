"""Export a trained run to ONNX (with its preprocessing in the metadata) or TorchScript.

The ONNX graph takes normalised float images ``[batch, in_chans, size, size]`` (dynamic batch)
and returns logits. ``metadata_props`` carries what a user needs with only onnxruntime:
``class_names``, ``image_size``, ``in_chans``, ``mean``, ``std`` (JSON strings) and a one-line
``preprocessing`` recipe. Every export is checked against the PyTorch model before it is
reported as done.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import RunError
from .spec import LoadedRun

OPSET = 17
PARITY_TOLERANCE = 1e-3


def _sample_inputs(run: LoadedRun, n: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, run.data_channels, 28, 28), dtype=torch.uint8, generator=generator)
    return run.preprocessor()(images).contiguous()


def _check_writable(output: Path) -> None:
    if output.exists() and output.is_dir():
        raise RunError(f"--output {output} is a directory; give a file name")
    if not output.parent.exists():
        raise RunError(f"cannot write {output}: folder {output.parent} does not exist")
    try:
        with open(output, "ab"):
            pass
    except OSError as err:
        raise RunError(f"cannot write {output}: {err.strerror}") from None


def export_onnx(run: LoadedRun, output: Path) -> dict:
    """Write an ONNX file and verify it with onnxruntime; returns ``{max_abs_diff, ...}``."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise RunError("ONNX export needs the export extra: pip install 'tlearn[export]'") from None
    _check_writable(output)
    model = run.model.eval()
    sample = _sample_inputs(run)
    tmp = output.with_name(f".{output.name}.tmp")
    torch.onnx.export(
        model,
        (sample,),
        str(tmp),
        input_names=["image"],
        output_names=["logits"],
        opset_version=OPSET,
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    prep = run.preprocessing
    meta = {
        "class_names": json.dumps(run.classes),
        "image_size": json.dumps(prep.image_size),
        "in_chans": json.dumps(prep.in_chans),
        "input_mode": json.dumps(prep.input_mode),
        "mean": json.dumps(list(prep.mean)),
        "std": json.dumps(list(prep.std)),
        "preprocessing": "convert to input_mode (L or RGB) -> bilinear resize to image_size x image_size -> /255 "
        "-> replicate to in_chans channels -> (x - mean) / std per channel -> float32 [batch, in_chans, H, W]",
        "producer": "tlearn",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(sample).numpy()
    got = session.run(None, {"image": sample.numpy()})[0]
    diff = float(abs(expected - got).max())
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise RunError(f"ONNX export does not match the PyTorch model (max abs diff {diff:.2e}); not written")
    tmp.replace(output)
    return {"format": "onnx", "output": str(output), "opset": OPSET, "max_abs_diff": diff, "metadata": meta}


def export_torchscript(run: LoadedRun, output: Path) -> dict:
    """Write a traced TorchScript module and verify it against the PyTorch model."""
    _check_writable(output)
    model = run.model.eval()
    sample = _sample_inputs(run)
    with torch.inference_mode():
        expected = model(sample)
    traced = torch.jit.trace(model, sample, check_trace=False)
    extra = {"tlearn.json": json.dumps({"classes": run.classes, "preprocessing": run.preprocessing.to_dict()})}
    tmp = output.with_name(f".{output.name}.tmp")
    torch.jit.save(traced, str(tmp), _extra_files=extra)
    reloaded = torch.jit.load(str(tmp))
    with torch.inference_mode():
        diff = float((reloaded(sample) - expected).abs().max())
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise RunError(f"TorchScript export does not match the PyTorch model (max abs diff {diff:.2e}); not written")
    tmp.replace(output)
    return {"format": "torchscript", "output": str(output), "max_abs_diff": diff}
