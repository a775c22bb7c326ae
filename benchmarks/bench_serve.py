"""Benchmark: tlearn serve's latency and throughput, for 1 client and for 50 concurrent clients.

The server runs in its own process (uvicorn, as ``tlearn serve`` starts it) on 127.0.0.1; the
clients (httpx, asyncio) run in this process and send distinct MNIST test digits as multipart
PNG uploads. One client sends its requests one after another; then 50 clients send theirs at the
same time. Reported per setting: latency p50/p95 (ms, request sent to answer read) and images/s
(answers / wall time). Each setting runs with micro-batching on (the default: the inference
thread takes every queued image as one batch) and off (``--max-batch 1``), to show what batching
buys. Without ``--run`` it first trains the ``default`` preset (the model ``tlearn train`` gives).
The clients share the CPU with the server, as they would on one machine.
"""

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, run_cli, write_result  # noqa: E402

SERVER = """
import sys, uvicorn
from tlearn.serve.app import create_app
app = create_app(sys.argv[1], max_batch=int(sys.argv[3]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def digit_pngs(count: int) -> list[bytes]:
    from PIL import Image

    from tlearn.data.idx import load_idx

    test = load_idx(Path(data_dir()), train=False)
    out = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(test.images[i, 0].numpy()).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def start_server(run_dir: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(run_dir), str(port), str(max_batch)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the server did not start within 120 s") from None
            time.sleep(0.25)


async def clients(url: str, images: list[bytes], count: int, per_client: int) -> dict:
    """``count`` clients, each sending ``per_client`` requests in turn; latencies and throughput."""
    import httpx
    import numpy as np

    latencies, failures = [], 0
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one_client(k: int) -> None:
            nonlocal failures
            for j in range(per_client):
                data = images[(k * per_client + j) % len(images)]
                started = time.perf_counter()
                answer = await client.post(f"{url}/predict", files={"file": ("digit.png", data)})
                latencies.append(time.perf_counter() - started)
                failures += answer.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(one_client(k) for k in range(count)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "clients": count,
        "requests": len(latencies),
        "failures": failures,
        "latency_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "latency_p95_ms": round(float(np.percentile(ms, 95)), 1),
        "images_per_s": round(len(latencies) / wall, 1),
        "wall_seconds": round(wall, 2),
    }


def measure(run_dir: Path, images: list[bytes], max_batch: int, args) -> dict:
    process, url = start_server(run_dir, max_batch)
    try:
        asyncio.run(clients(url, images, 1, min(5, args.requests)))  # warm-up, not reported
        single = asyncio.run(clients(url, images, 1, args.requests))
        many = asyncio.run(clients(url, images, args.clients, args.per_client))
    finally:
        process.terminate()
        process.wait(timeout=60)
    for name, row in (("1 client", single), (f"{args.clients} clients", many)):
        print(
            f"max_batch {max_batch:>2}, {name:>10}: p50 {row['latency_p50_ms']:7.1f} ms, "
            f"p95 {row['latency_p95_ms']:7.1f} ms, {row['images_per_s']:6.1f} images/s, {row['failures']} failures"
        )
    return {"1_client": single, f"{args.clients}_clients": many}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="A finished run to serve (default: train the default preset).")
    parser.add_argument("--requests", type=int, default=200, help="Requests of the single client.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients.")
    parser.add_argument("--per-client", type=int, default=10, help="Requests of each concurrent client.")
    parser.add_argument("--name", default="serve", help="Result file name (benchmarks/results/<name>.json).")
    args = parser.parse_args()

    from tlearn.runs.spec import load_run
    from tlearn.serve.app import model_info

    run_dir = args.run
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="tlearn-bench-serve-")) / "run"
        run_cli(["--data-dir", data_dir(), "--out", str(run_dir)])
    run = load_run(run_dir)
    info = model_info(run, run_dir.name, 10.0)
    images = digit_pngs(max(args.requests, args.clients * args.per_client))
    results = {f"max_batch_{b}": measure(run_dir, images, b, args) for b in (32, 1)}
    write_result(
        args.name,
        {
            "run": str(run_dir),
            "backbone": info["backbone"],
            "input_size": info["input_size"],
            "test_accuracy": info["metrics"].get("test_accuracy"),
            "upload": "multipart PNG of an MNIST test digit (28x28 grey), a distinct digit per request",
            "cpu_count": os.cpu_count(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
