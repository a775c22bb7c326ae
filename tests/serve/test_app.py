"""tlearn serve over real HTTP: answers equal `tlearn predict`'s, bad requests get a 4xx with a JSON reason
and leave the server serving, 50 concurrent requests are all answered correctly, the event loop never blocks."""

import io
import json
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from tests.serve.conftest import digits
from tlearn.cli import main
from tlearn.data.images import read_image
from tlearn.inference import predict_images, top_k
from tlearn.runs.spec import load_run

TIMEOUT = 60.0


def expected(run_dir, paths):
    """What `tlearn predict` answers for these files: ``[(label, probability)]``."""
    run = load_run(run_dir)
    return [row[0] for row in top_k(predict_images(run, [read_image(p, 1) for p in paths]), run.classes, 1)]


def png_header(width: int, height: int) -> bytes:
    """A small PNG file that claims ``width`` x ``height`` grey pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def encoded(path, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).resize((280, 280)).save(buffer, format=fmt)
    return buffer.getvalue()


def assert_still_serving(served, digit) -> None:
    assert httpx.get(f"{served.url}/health", timeout=TIMEOUT).json()["status"] == "ok"
    path, _ = digit
    answer = httpx.post(f"{served.url}/predict", files={"file": path.read_bytes()}, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["label"]


def test_multipart_and_raw_uploads_answer_what_predict_answers(served, tmp_path):
    files = digits(served.root, tmp_path, 4)
    want = expected(served.run_dir, [p for p, _ in files])
    url = f"{served.url}/predict?top_k=3"
    for (path, _), (label, probability) in zip(files, want):
        for answer in (
            httpx.post(url, files={"file": (path.name, path.read_bytes())}, timeout=TIMEOUT),  # multipart
            httpx.post(url, content=path.read_bytes(), timeout=TIMEOUT),  # raw body
        ):
            body = answer.json()
            assert answer.status_code == 200 and body["label"] == label
            assert body["probability"] == pytest.approx(probability, abs=1e-5)
            assert [r["label"] for r in body["top_k"]][0] == label and len(body["top_k"]) == 3
            assert body["model"].startswith(served.run_dir.name + "@")


def test_health_model_and_page(served):
    health = httpx.get(f"{served.url}/health", timeout=TIMEOUT).json()
    model = httpx.get(f"{served.url}/model", timeout=TIMEOUT).json()
    metrics = json.loads((served.run_dir / "metrics.json").read_text())
    assert health == {"status": "ok", "model": model["id"]}
    assert model["classes"] == [str(i) for i in range(10)] and model["input_size"] == [1, 48, 48]
    assert model["metrics"]["test_accuracy"] == metrics["test_accuracy"] and model["metrics"]["test_samples"] == 500
    page = httpx.get(f"{served.url}/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<input id="file" type="file"' in page.text and "http://" not in page.text and "https://" not in page.text


def _bad_requests(tmp_path, digit):
    path, _ = digit
    png = path.read_bytes()
    return {
        "not an image": dict(content=b"hello, I am text", headers={"content-type": "image/png"}),
        "not an image, multipart": dict(files={"file": ("a.png", b"%PDF-1.4 not a picture")}),
        "truncated PNG": dict(content=encoded(path, "PNG")[:600]),
        "truncated JPEG": dict(files={"file": ("a.jpg", encoded(path, "JPEG")[:700])}),
        "zero bytes": dict(content=b""),
        "zero-byte file": dict(files={"file": ("a.png", b"")}),
        "decompression bomb": dict(content=png_header(100_000, 100_000)),
        "64-megapixel header": dict(files={"file": ("big.png", png_header(8_000, 8_000))}),
        "over the size limit": dict(content=png + b"\0" * (10 * 2**20)),
        "over the size limit, multipart": dict(files={"file": ("a.png", png + b"\0" * (10 * 2**20))}),
        "wrong field name": dict(files={"image": ("a.png", png)}),
        "a text field, no file": dict(data={"file": "digit.png"}, files={"other": ("x", b"x")}),
        "malformed multipart": dict(content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data"}),
        "top_k=0": dict(files={"file": ("a.png", png)}, params={"top_k": 0}),
    }


def test_bad_requests_get_a_4xx_with_a_json_reason_and_the_server_keeps_serving(served, tmp_path):
    good = digits(served.root, tmp_path, 1)[0]
    statuses = {}
    for name, request in _bad_requests(tmp_path, good).items():
        answer = httpx.post(f"{served.url}/predict", timeout=TIMEOUT, **request)
        statuses[name] = answer.status_code
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
        assert answer.json()["detail"], name  # a JSON reason
        assert_still_serving(served, good)
    assert statuses["over the size limit"] == statuses["over the size limit, multipart"] == 413
    assert statuses["zero bytes"] == statuses["zero-byte file"] == 400
    assert statuses["not an image"] == statuses["truncated PNG"] == statuses["decompression bomb"] == 422
    bomb = httpx.post(f"{served.url}/predict", content=png_header(8_000, 8_000), timeout=TIMEOUT).json()
    assert "too many pixels" in bomb["detail"]


def test_fifty_concurrent_requests_are_all_answered_correctly(served, tmp_path):
    files = digits(served.root, tmp_path, 50, start=100)
    want = expected(served.run_dir, [p for p, _ in files])

    def ask(path):
        with httpx.Client(timeout=TIMEOUT) as client:
            return client.post(f"{served.url}/predict", files={"file": path.read_bytes()})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(ask, [p for p, _ in files]))
    assert [a.status_code for a in answers] == [200] * 50
    for answer, (label, probability) in zip(answers, want):
        assert answer.json()["label"] == label
        assert answer.json()["probability"] == pytest.approx(probability, abs=1e-4)  # batched: float rounding only


def test_inference_runs_off_the_event_loop(served, tmp_path, monkeypatch):
    """While the model is busy (held here), /health and /model still answer at once."""
    import tlearn.serve.predictor as predictor

    entered, release = threading.Event(), threading.Event()
    original = predictor.predict_images

    def held(*args, **kwargs):
        entered.set()
        release.wait(timeout=TIMEOUT)
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor, "predict_images", held)
    path, _ = digits(served.root, tmp_path, 1)[0]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(httpx.post, f"{served.url}/predict", files={"file": path.read_bytes()}, timeout=TIMEOUT)
        assert entered.wait(timeout=TIMEOUT)
        started = time.monotonic()
        assert httpx.get(f"{served.url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{served.url}/model", timeout=5).status_code == 200
        quick = time.monotonic() - started
        assert not pending.done()  # the prediction is still held, yet the server answered
        release.set()
        assert pending.result().status_code == 200
    assert quick < 5


def test_serve_without_the_extra_is_a_one_line_error(served, monkeypatch, capsys):
    import tlearn.serve

    monkeypatch.setattr(tlearn.serve, "missing_package", lambda: "fastapi")
    with pytest.raises(SystemExit) as done:
        main(["serve", str(served.run_dir)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "pip install 'tlearn[serve]'" in err and len(err.strip().splitlines()) == 1


def test_a_port_in_use_is_a_one_line_error(served, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as done:
            main(["serve", str(served.run_dir), "--port", str(taken.getsockname()[1])])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "cannot listen on 127.0.0.1:" in err and len(err.strip().splitlines()) == 1


def test_the_serve_command_listens_where_it_is_told(served, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tlearn.cli", "serve", str(served.run_dir), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "tlearn serve did not start"
                time.sleep(0.25)
        assert health.json()["model"].startswith(served.run_dir.name)
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)
