"""A real uvicorn server on 127.0.0.1 (an ephemeral port) serving the shared MNIST run, for the
API and browser tests; it runs in a thread of the test process and stops after the tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def digits(root: Path, folder: Path, count: int, start: int = 0) -> list[tuple[Path, str]]:
    """``count`` MNIST test digits written as PNG files: ``[(path, true label)]``."""
    from PIL import Image

    from tlearn.data.idx import load_idx

    test = load_idx(root, train=False)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + count):
        path = folder / f"{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(path)
        out.append((path, str(int(test.labels[i]))))
    return out


class Served:
    """A running server: its base URL and the run it serves."""

    def __init__(self, url: str, run_dir: Path, root: Path):
        self.url, self.run_dir, self.root = url, run_dir, root


@pytest.fixture(scope="package")
def served(mnist_run):
    import uvicorn

    from tlearn.serve.app import create_app

    result, root = mnist_run
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(result.run_dir), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Served(f"http://127.0.0.1:{port}", result.run_dir, root)
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
