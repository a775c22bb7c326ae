"""Models: pretrained backbones and the classifier built on them.

``backbone`` (the interface every backbone has), ``backbones`` (registry and factory: a name's
source, and one interface for torchvision, timm and the packaged EfficientNet-Lite0), ``weights``
(where pretrained weights come from, without pickle), ``heads`` (the classifier heads),
``transfer`` (backbone + head, freezing, per-stage parameter groups), ``catalog`` (what exists and
what works offline), ``folding`` (BatchNorm folding and static padding: faster copies for
inference).
"""
