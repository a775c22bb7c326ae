"""The batch size of CPU inference: a fixed default, and :class:`BatchSizeTuner`, which finds the
fastest one on the data while that data is evaluated."""

from __future__ import annotations

import statistics

import torch


def inference_batch_size(device: str | torch.device) -> int:
    """Batch size for inference when it is not tuned (see :class:`BatchSizeTuner`): on CPU small
    batches stay in cache; GPUs want more."""
    return 64 if torch.device(device).type == "cpu" else 512


class BatchSizeTuner:
    """Finds the fastest CPU inference batch size on the data itself, while that data is evaluated.

    The best size depends on the input size and on the CPU's caches: the same model can run fastest
    at a small batch at one input size and at a larger batch at a smaller one, so no fixed size suits
    every run. So the first batches of a large evaluation try each candidate twice (the first pass
    of a new shape pays one-off set-up and is not counted), and the rest use the fastest. Batches
    are whole multiples of ``BASE`` source batches.

    Sizes are tried smallest first, and once a size runs slower than a smaller one the larger ones
    are not tried: past the CPU's caches they only get slower, and trying them would cost more time
    than running the same images at the faster size.

    One timed batch per size is at the mercy of a shared CPU's hiccups: one slow batch can make an
    evaluation choose a slower size. So every batch at the chosen size is timed too, and every
    ``RECHECK`` of them the sizes next to it run one batch each again; the choice is the size with
    the highest median rate, so one slow batch neither makes nor keeps a choice.

    The timings behind these choices are in docs/performance.md.
    """

    BASE = 16
    MULTIPLES = (1, 2, 4, 8)
    MIN_SAMPLES = 2048  # below this the trials would be most of the work
    RECHECK = 16

    @classmethod
    def candidate_sizes(cls, limit: int) -> list[int]:
        """The batch sizes (in images) the search may try that are at most ``limit``, smallest first:
        ``BASE`` times each of ``MULTIPLES``."""
        return [cls.BASE * m for m in cls.MULTIPLES if cls.BASE * m <= limit]

    def __init__(self) -> None:
        self._trials = [m for m in self.MULTIPLES for _ in range(2)]
        self._growing = True  # the first search, smallest size first
        self._rates: dict[int, list[float]] = {}  # images/s of each timed batch, per size
        self._since_check = 0
        self.multiple = self._trials[0]

    def regroup(self, base_batches):
        """Concatenate base batches into batches of the current choice."""
        pending = []
        for batch in base_batches:
            pending.append(batch)
            if len(pending) == self.multiple:
                yield torch.cat(pending)
                pending = []
        if pending:
            yield torch.cat(pending)

    def rate(self, multiple: int) -> float:
        """The median images/s measured at ``multiple`` base batches (0 if never timed)."""
        rates = self._rates.get(multiple)
        return statistics.median_high(rates) if rates else 0.0

    def record(self, samples: int, seconds: float) -> None:
        """Report how long the last batch took; moves to the next trial or to the best size."""
        rate = samples / max(seconds, 1e-9)
        if self._trials:
            done = self._trials.pop(0)
            if samples == done * self.BASE and not (self._trials and self._trials[0] == done):
                slower = self._growing and rate < max(map(self.rate, self._rates), default=0.0)
                self._rates.setdefault(done, []).append(rate)  # (the second pass of a new size)
                if slower:  # slower than a smaller size: stop growing
                    self._trials.clear()
            if not self._trials:
                self._growing = False
        elif samples == self.multiple * self.BASE:
            self._rates[self.multiple].append(rate)
            self._since_check += 1
            if self._since_check >= self.RECHECK:
                self._since_check = 0
                self._trials = self._neighbours()
        self.multiple = self._trials[0] if self._trials else max(self._rates, key=self.rate, default=4)

    def _neighbours(self) -> list[int]:
        """One batch at each size next to the choice (two at one never run: its first pays set-up)."""
        i = self.MULTIPLES.index(self.multiple)
        sizes = [self.MULTIPLES[j] for j in (i - 1, i + 1) if 0 <= j < len(self.MULTIPLES)]
        return [m for size in sizes for m in ([size] if size in self._rates else [size, size])]
