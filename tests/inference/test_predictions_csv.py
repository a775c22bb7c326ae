"""The predictions CSV: what ``tlearn predict --output`` writes, directly and through the CLI."""

import csv
import subprocess
import sys

import pytest
from PIL import Image

from tlearn.data.idx import load_idx
from tlearn.errors import RunError
from tlearn.inference.predictions_csv import write_predictions_csv


def test_one_row_per_image_and_the_ranked_classes_when_k_is_over_one(tmp_path):
    out = tmp_path / "pred.csv"
    write_predictions_csv(out, ["a.png", "b.png"], [[("cat", 0.75), ("dog", 0.25)], [("dog", 0.5), ("cat", 0.5)]])
    assert out.read_text().splitlines() == [
        "path,label,probability,top_k",
        "a.png,cat,0.750000,cat:0.750000;dog:0.250000",
        "b.png,dog,0.500000,dog:0.500000;cat:0.500000",
    ]
    write_predictions_csv(out, ["a.png"], [[("cat", 0.75)]])
    assert out.read_text().splitlines() == ["path,label,probability", "a.png,cat,0.750000"]


def test_an_unwritable_path_is_a_run_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(RunError, match="cannot write"):
        write_predictions_csv(tmp_path / "a_file" / "pred.csv", ["a.png"], [[("cat", 1.0)]])


def test_predict_cli_writes_csv_and_skips_bad_files(mnist_run, tmp_path):
    result, root = mnist_run
    images = load_idx(root, train=False).images[:6]
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(tmp_path / f"d{i}.png")
    (tmp_path / "notes.png").write_bytes(b"this is not an image")
    out = tmp_path / "pred.csv"
    args = ["predict", str(result.run_dir), str(tmp_path), "--top-k", "2", "--output", str(out)]
    proc = subprocess.run([sys.executable, "-m", "tlearn.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 file(s)" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and set(rows[0]) == {"path", "label", "probability", "top_k"}
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
