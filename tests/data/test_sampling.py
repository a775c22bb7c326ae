"""Seeded, class-stratified subsets."""

import pytest
import torch

from tlearn.data.sampling import stratified_indices
from tlearn.errors import DataError


def test_stratified_subset_is_balanced_seeded_and_exclusive():
    labels = torch.arange(10).repeat_interleave(100)
    idx = stratified_indices(labels, 200, seed=3)
    assert idx.numel() == 200 and idx.unique().numel() == 200
    assert torch.bincount(labels[idx], minlength=10).tolist() == [20] * 10
    assert torch.equal(idx, stratified_indices(labels, 200, seed=3))
    assert not torch.equal(idx, stratified_indices(labels, 200, seed=4))
    other = stratified_indices(labels, 300, seed=0, exclude=idx)
    assert not set(other.tolist()) & set(idx.tolist())


def test_stratified_subset_keeps_class_proportions():
    labels = torch.tensor([0] * 70 + [1] * 30)
    idx = stratified_indices(labels, 10, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [7, 3]


def test_too_many_samples():
    with pytest.raises(DataError, match="only 10 are available"):
        stratified_indices(torch.zeros(10, dtype=torch.long), 11, seed=0)
