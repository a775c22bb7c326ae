"""What the trainer is fed: the image path folds a frozen stem that stays frozen."""

import pytest

from tlearn.config import make_config


@pytest.mark.parametrize(
    "values,folded",
    [
        ({"freeze": "until:blocks.1", "augment": "digits"}, True),
        ({"freeze": "until:blocks.1", "augment": "digits", "schedule": "gradual"}, False),
        ({"freeze": "none", "augment": "digits"}, False),
    ],
)
def test_the_image_path_folds_a_stem_that_stays_frozen(values, folded, tiny_mnist, monkeypatch):
    from tlearn.models.views import FoldedStemModel
    from tlearn.training.run import Run

    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # prepare() seeds as Lightning does: undo it afterwards
        monkeypatch.setenv(name, "0")

    base = {"backbone": "efficientnet_lite0", "image_size": 32, "train_size": 50, "test_size": 20}
    config = make_config({**base, "data_dir": str(tiny_mnist), "progress": False, **values})
    feed = Run.prepare(config).feed
    assert isinstance(feed.module, FoldedStemModel) == folded
