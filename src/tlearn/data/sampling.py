"""Seeded, class-stratified subsets."""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import DataError


def stratified_indices(
    labels: torch.Tensor, n: Optional[int], seed: int, exclude: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """A seeded, class-stratified subset of ``n`` indices (all when ``n`` is None).

    Each class gets a share proportional to its frequency (largest remainder), so 1,000 MNIST
    images hold about 100 of each digit. Indices in ``exclude`` are never chosen.
    """
    pool = torch.arange(labels.numel())
    if exclude is not None and exclude.numel():
        keep = torch.ones(labels.numel(), dtype=torch.bool)
        keep[exclude] = False
        pool = pool[keep]
    if n is None or n == pool.numel():
        return pool
    if n > pool.numel():
        raise DataError(f"asked for {n} samples but only {pool.numel()} are available")
    gen = torch.Generator().manual_seed(seed)
    pool_labels = labels[pool]
    classes, counts = torch.unique(pool_labels, return_counts=True)
    exact = counts.double() * n / pool.numel()
    quota = exact.floor().long()
    short = n - int(quota.sum())
    if short:
        order = torch.argsort(exact - quota.double(), descending=True, stable=True)
        quota[order[:short]] += 1
    chosen = []
    for cls, k in zip(classes.tolist(), quota.tolist()):
        members = pool[pool_labels == cls]
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
    picked = torch.cat(chosen)
    return picked[torch.randperm(picked.numel(), generator=gen)]
