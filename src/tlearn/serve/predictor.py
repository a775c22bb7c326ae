"""The model behind the server: images decoded and classified off the event loop.

Decoding runs in the thread pool, at most as many at once as there are cores (a 10 MB upload can
decode to hundreds of megabytes). Inference runs in one worker thread, so requests never compete
for the cores inside torch; it takes every image waiting in the queue as one batch (up to
``max_batch``). It never waits for more to arrive, so a lone request is not delayed, while
concurrent ones share a forward pass: on the CPU an image in a batch costs several times less
than an image classified alone (figures in docs/performance.md).
"""

from __future__ import annotations

import asyncio
import io
import os
import queue
import threading
from typing import Optional

import torch

from ..data.images import read_image
from ..inference import predict_images
from ..runs.spec import LoadedRun

# Larger images are refused from their header (about 40 megapixels: a big camera photo).
MAX_PIXELS = 40_000_000
MAX_BATCH = 32


class Predictor:
    """Decodes uploads and classifies them with a run, one batch at a time in a worker thread."""

    def __init__(self, run: LoadedRun, max_batch: int = MAX_BATCH, max_pixels: int = MAX_PIXELS):
        self.run = run
        self.max_batch = max(1, max_batch)
        self.max_pixels = max_pixels
        self._queue: queue.Queue = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._decoders: Optional[asyncio.Semaphore] = None

    def start(self) -> None:
        """Start the inference thread (the server's start-up calls this)."""
        self._decoders = asyncio.Semaphore(os.cpu_count() or 1)
        self._thread = threading.Thread(target=self._work, name="tlearn-inference", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Let the inference thread finish the queued work and end."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def decode(self, data: bytes) -> torch.Tensor:
        """uint8 ``[C, H, W]`` as ``tlearn predict`` reads a file; ``DataError`` for anything but an image."""
        prep = self.run.preprocessing  # decoded as the run's images were: at its working size
        return read_image(io.BytesIO(data), prep.data_channels, prep.working_side, max_pixels=self.max_pixels)

    async def classify(self, data: bytes) -> torch.Tensor:
        """Class probabilities of one uploaded image (decoded and run off the event loop)."""
        async with self._decoders:
            image = await asyncio.to_thread(self.decode, data)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((image, future, loop))
        return await future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:  # whatever else is already waiting joins this pass
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._run(batch)

    def _run(self, batch: list) -> None:
        try:
            probabilities = predict_images(self.run, [image for image, _, _ in batch])
        except Exception as err:  # hand the failure to every waiting request instead of killing the thread
            for _, future, loop in batch:
                loop.call_soon_threadsafe(_settle, future, None, err)
            return
        for (_, future, loop), row in zip(batch, probabilities):
            loop.call_soon_threadsafe(_settle, future, row, None)


def _settle(future: asyncio.Future, result, error: Optional[BaseException]) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
