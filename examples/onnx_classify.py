"""Classify images with nothing but a tlearn ONNX file, onnxruntime, NumPy and Pillow.

    python examples/onnx_classify.py model.onnx digit.png other.jpg

All preprocessing comes from the file's metadata (class_names, image_size, in_chans,
input_mode, mean, std), so no tlearn install is needed.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def load(path: str):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = {
        k: json.loads(v)
        for k, v in session.get_modelmeta().custom_metadata_map.items()
        if k != "preprocessing" and k != "producer"
    }
    return session, meta


def preprocess(image: Image.Image, meta: dict) -> np.ndarray:
    image = image.convert("RGBA").convert("RGB") if image.mode in ("RGBA", "LA", "P", "PA") else image
    image = image.convert(meta["input_mode"]).resize((meta["image_size"], meta["image_size"]), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32) / 255.0
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    if x.shape[0] == 1 and meta["in_chans"] == 3:
        x = np.repeat(x, 3, axis=0)
    elif x.shape[0] == 3 and meta["in_chans"] == 1:
        x = x.mean(axis=0, keepdims=True)
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(-1, 1, 1)
    return (x - mean) / std


def classify(session, meta: dict, images: list) -> list:
    batch = np.stack([preprocess(img, meta) for img in images]).astype(np.float32)
    logits = session.run(None, {"image": batch})[0]
    return [meta["class_names"][i] for i in logits.argmax(1)]


if __name__ == "__main__":
    session, meta = load(sys.argv[1])
    for path, label in zip(sys.argv[2:], classify(session, meta, [Image.open(p) for p in sys.argv[2:]])):
        print(f"{path}\t{label}")
