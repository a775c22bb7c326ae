"""Training: from a config to a finished run directory.

``pipeline`` (``train``/``resume``: the phases in order), ``run`` (the :class:`~.run.Run` object:
config, data, model, feed, directory, clock), ``feed`` (what the trainer is fed: images or cached
activations), ``cache`` (the frozen-feature cache), ``budget`` (the ``--time-budget`` stage) and
``budget_keeper`` (its Lightning callback), ``fitting`` (the fit phase), ``finish`` (evaluation
and outputs), ``outcome`` (how training went), ``objective`` (a batch's loss), ``module`` (the
LightningModule), ``head_loop`` (a head alone on cached features, without Lightning), ``optim``
(optimisers and LR schedules), ``callbacks`` (epoch history with exact-resume state, gradual
unfreezing, progressive resizing), ``checkpoints`` (checkpoints without the unchanged frozen
weights), ``trainer`` (Lightning's Trainer, Ctrl-C), ``distributed`` (DDP), ``lr_find`` and
``compare`` (experiments over ``train``).
"""
