"""The Run object: preprocessing resolved once, seeding, what the trainer is fed, reconfiguring."""

import os

import torch

from tlearn.config import make_config
from tlearn.training.distributed import launch_environment
from tlearn.training.run import Run


def test_prepare_resolves_one_preprocessing_for_model_and_data(tiny_mnist):
    config = make_config(
        {
            "data_dir": str(tiny_mnist),
            "train_size": 50,
            "test_size": 20,
            "image_size": 40,
            "backbone": "resnet18",
            "weights": "none",
            "in_chans": 1,
        }
    )
    with launch_environment():
        run = Run.prepare(config)
    prep, feed = run.preprocessing, run.feed
    assert prep.image_size == 40 and prep.in_chans == 1 and prep.data_channels == 1
    assert feed.preprocessor.prep is prep and not feed.cache.used
    assert run.model.backbone.model.conv1.in_channels == 1
    assert set(feed.generators()) == {"shuffle", "augment"}


def test_seeding_happens_inside_the_run_environment_only(tiny_mnist):
    config = make_config(
        {
            "data_dir": str(tiny_mnist),
            "train_size": 20,
            "test_size": 10,
            "image_size": 32,
            "backbone": "resnet18",
            "weights": "none",
            "seed": 11,
        }
    )
    before = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    with launch_environment():
        first = Run.prepare(config).model.head.fc.weight.detach().clone()
        assert os.environ["PL_GLOBAL_SEED"] == "11"
    assert {k: os.environ.get(k) for k in before} == before
    with launch_environment():
        again = Run.prepare(config).model.head.fc.weight.detach()
    assert torch.equal(first, again)  # the same seed builds the same head


def test_views_sampler_draws_one_epoch_of_images_and_is_wrapped_not_replaced():
    """K cached views: an epoch is N draws of the N x K (image, view) pairs, also under DDP."""
    import torch
    from torch.utils.data import RandomSampler

    from tlearn.data.loaders import EpochSubsetSampler

    sampler = EpochSubsetSampler(30, 10, torch.Generator().manual_seed(0))
    reference = RandomSampler(range(30), num_samples=10, generator=torch.Generator().manual_seed(0))
    assert list(sampler) == list(reference)  # same draws as before, so single-process runs are unchanged
    assert len(sampler) == 10 and len(set(sampler)) == 10
    assert not isinstance(sampler, RandomSampler)  # Lightning would replace it by a full-dataset DistributedSampler


def _tiny(tiny_mnist, **values):
    base = {"data_dir": str(tiny_mnist), "train_size": 40, "test_size": 20, "val_size": 20, "image_size": 32}
    return make_config({**base, "backbone": "resnet18", "weights": "none", "progress": False, **values})


def test_reconfiguring_reads_the_data_again_only_when_a_data_option_changes(tiny_mnist):
    with launch_environment():
        run = Run.prepare(_tiny(tiny_mnist))
        splits, model = run.splits, run.model
        run.reconfigure(epochs=7)  # the plan only: nothing rebuilt
        assert run.config.epochs == 7 and run.model is model and run.splits is splits
        run.reconfigure(freeze="until:layer1")  # the model and its feed, on the same splits
        assert run.splits is splits and run.model is not model and str(run.config.freeze) == "until:layer1"
        fresh = Run.prepare(run.config)  # as if prepared with the new freezing from the start
        for mine, theirs in zip(run.model.state_dict().values(), fresh.model.state_dict().values()):
            assert torch.equal(mine, theirs)
        run.reconfigure(image_size=40)  # a new preprocessing: the data is read again at the new size
        assert run.splits is not splits and run.preprocessing.image_size == 40
        run.reconfigure(train_size=30)
        assert len(run.splits.train) == 30
