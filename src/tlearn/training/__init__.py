"""Training: from a config to a finished run directory.

``pipeline`` (``train``/``resume``: the whole run), ``setup`` (device, data, model, and what the
trainer is fed: images or cached features), ``cache`` (the frozen-feature cache), ``objective``
(a batch's loss), ``module`` (the LightningModule), ``head_fit`` (a head alone on cached
features, without Lightning), ``optim`` (optimisers and LR schedules), ``callbacks`` (epoch history
with exact-resume state, gradual unfreezing), ``checkpoints`` (checkpoints without the
unchanged frozen weights), ``trainer`` (Lightning's Trainer, Ctrl-C), ``distributed`` (DDP),
``lr_find`` and ``compare`` (experiments over ``train``).
"""
