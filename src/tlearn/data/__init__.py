"""Data: where images come from and how they become model inputs.

- ``sources``-level modules read datasets: ``idx`` (MNIST, Fashion-MNIST, KMNIST), ``builtin``
  (CIFAR-10/100, SVHN), ``folders`` (class folders and CSV files of image files).
- ``images`` decodes image files; ``splits`` holds images as train/val/test splits and cuts
  seeded, stratified subsets; ``preprocessing`` resolves how an image becomes a model input
  (size, channels, mean/std, evaluation view); ``augment`` does batched on-device
  preprocessing and augmentation.
"""
