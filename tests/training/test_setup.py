"""Setting a run up: preprocessing resolved once, seeding, what the trainer is fed."""

import os

import torch

from tlearn.config import make_config
from tlearn.training.distributed import launch_environment
from tlearn.training.setup import fit_inputs, prepare


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
        p = prepare(config)
        fit = fit_inputs(config, p)
    assert p.prep.image_size == 40 and p.prep.in_chans == 1 and p.prep.data_channels == 1
    assert fit.preprocessor.prep is p.prep and not fit.cache["used"]
    assert p.model.backbone.model.conv1.in_channels == 1
    assert set(fit.generators()) == {"shuffle", "augment"}


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
        first = prepare(config).model.head.fc.weight.detach().clone()
        assert os.environ["PL_GLOBAL_SEED"] == "11"
    assert {k: os.environ.get(k) for k in before} == before
    with launch_environment():
        again = prepare(config).model.head.fc.weight.detach()
    assert torch.equal(first, again)  # the same seed builds the same head


def test_views_sampler_draws_one_epoch_of_images_and_is_wrapped_not_replaced():
    """K cached views: an epoch is N draws of the N x K (image, view) pairs, also under DDP."""
    import torch
    from torch.utils.data import RandomSampler

    from tlearn.training.setup import EpochSubsetSampler

    sampler = EpochSubsetSampler(30, 10, torch.Generator().manual_seed(0))
    reference = RandomSampler(range(30), num_samples=10, generator=torch.Generator().manual_seed(0))
    assert list(sampler) == list(reference)  # same draws as before, so single-process runs are unchanged
    assert len(sampler) == 10 and len(set(sampler)) == 10
    assert not isinstance(sampler, RandomSampler)  # Lightning would replace it by a full-dataset DistributedSampler
