"""Runs: what a training run leaves behind, and reading it back.

``directory`` (the run directory and ``RunResult``), ``record`` (``metrics.json`` as a typed
``RunRecord``), ``spec`` (``model.json`` + ``model.safetensors``: save, rebuild, load a run for
inference), ``metrics`` (classification metrics), ``plots`` (learning curves, confusion matrix),
``report`` (``report.html``), ``export`` (ONNX, TorchScript).
"""
