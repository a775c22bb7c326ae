"""Property tests: the image, IDX, CSV and YAML readers and the CLI parser on generated input.

Each reader either returns a value or raises a clean ``TlearnError`` — nothing else escapes.
CI runs 60 per property; ``TLEARN_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py -m "slow or not slow"`` runs the
full 5 x 2,000 = 10,000-input campaign.
"""

import io
import os
import struct

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import preprocessing
from tlearn.cli import app
from tlearn.config import resolve_config
from tlearn.data.folders import read_csv_dataset
from tlearn.data.idx import load_idx
from tlearn.data.images import read_image
from tlearn.errors import TlearnError
from tlearn.training.distributed import check_distributed

EXAMPLES = int(os.environ.get("TLEARN_FUZZ_EXAMPLES", "60"))
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # "skipped N rows" warnings are expected here
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def _image_bytes():
    """Valid images of random modes/sizes/formats, possibly truncated or with flipped bytes."""
    from PIL import Image

    @st.composite
    def build(draw):
        mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16", "LA"]))
        fmt = draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF"]))
        w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        img = Image.new("RGB", (w, h), tuple(draw(st.integers(0, 255)) for _ in range(3)))
        try:
            img = img.convert(mode)
            buffer = io.BytesIO()
            img.save(buffer, format=fmt)
            data = buffer.getvalue()
        except (OSError, ValueError, KeyError):
            data = draw(st.binary(max_size=200))
        cut = draw(st.integers(0, len(data)))
        data = bytearray(data[: cut if draw(st.booleans()) else len(data)])
        for _ in range(draw(st.integers(0, 3))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)

    return st.one_of(build(), st.binary(max_size=300))


def _check_image(tmp_path, data):
    path = tmp_path / "x.img"
    path.write_bytes(data)
    for channels in (1, 3):
        try:
            image = read_image(path, channels)
        except TlearnError:
            continue
        assert image.ndim == 3 and image.shape[0] == channels and image.dtype.is_floating_point is False


def _check_idx(tmp_path, header, body, count_images, count_labels):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", header, count_images, 28, 28) + body)
    (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, count_labels) + body[:count_labels])
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")
    try:
        split = load_idx(tmp_path, train=True)
    except TlearnError:
        return
    assert split.images.shape[0] == split.labels.shape[0] > 0


def _check_csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    try:
        read_csv_dataset(path, preprocessing(32, data_channels=3, crop_pct=0.875))
    except TlearnError:
        pass


def _check_yaml(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        check_distributed(resolve_config(None, path, None))
    except TlearnError:
        pass


COMMAND = typer.main.get_command(app)
WORDS = [
    "train",
    "evaluate",
    "predict",
    "export",
    "presets",
    "compare",
    "lr-find",
    "backbones",
    "--lr",
    "--epochs",
    "--freeze",
    "until:layer3",
    "--preset",
    "default",
    "--augment",
    "digits",
    "-1",
    "nan",
    "0",
    "1e9",
    "--image-size",
    "--format",
    "onnx",
    "--help",
    "--debug",
    "--top-k",
    "x",
    "",
    "--batch-size",
    "--in-chans",
    "3",
    "--device",
    "mps",
    "--resume",
    "--devices",
    "--num-nodes",
    "--strategy",
    "ddp",
    "2",
]


def _check_argv(argv):
    """Parse (never run) the command line; then validate the train options as train would."""
    try:
        ctx = COMMAND.make_context("tlearn", list(argv), resilient_parsing=False)
        args = list(getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])) + list(ctx.args)
        name, sub, rest = COMMAND.resolve_command(ctx, args) if args else (None, None, [])
        if sub is None:
            return
        sub_ctx = sub.make_context(name, list(rest), parent=ctx)
    except (typer.Exit, typer.Abort, typer.TyperException):
        return
    if name == "train":
        own = ("preset", "config", "dry_run", "resume")
        options = {k: v for k, v in sub_ctx.params.items() if k not in own and v is not None}
        try:
            check_distributed(resolve_config("default", None, options))
        except TlearnError:
            pass


@FUZZ
@given(data=_image_bytes())
def test_image_reader(tmp_path_factory, data):
    _check_image(tmp_path_factory.mktemp("img"), data)


@FUZZ
@given(
    header=st.sampled_from([0x803, 0x801, 0x0, 0xFFFFFFFF, 0x80D]),
    body=st.binary(max_size=2000),
    count_images=st.integers(0, 5),
    count_labels=st.integers(0, 5),
)
def test_idx_reader(tmp_path_factory, header, body, count_images, count_labels):
    _check_idx(tmp_path_factory.mktemp("idx"), header, body, count_images, count_labels)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(st.tuples(st.text(max_size=20), st.text(max_size=10)), max_size=8).map(
            lambda rows: "path,label\n" + "\n".join(f"{a},{b}" for a, b in rows)
        ),
    )
)
def test_csv_reader(tmp_path_factory, text):
    _check_csv(tmp_path_factory.mktemp("csv"), text)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.dictionaries(
            st.sampled_from(["lr", "epochs", "freeze", "backbone", "augment", "x", "seed", "devices", "strategy"]),
            st.one_of(
                st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=10), st.none(), st.booleans()
            ),
            max_size=5,
        ).map(lambda d: "\n".join(f"{k}: {v!r}" for k, v in d.items())),
    )
)
def test_yaml_reader(tmp_path_factory, text):
    _check_yaml(tmp_path_factory.mktemp("yaml"), text)


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=8))
def test_cli_parser(argv):
    _check_argv(argv)


@pytest.mark.slow
def test_fuzz_campaign_size():
    """The slow campaign: run this file with TLEARN_FUZZ_EXAMPLES=2000 (5 properties → 10,000 inputs)."""
    assert EXAMPLES >= 2000, "set TLEARN_FUZZ_EXAMPLES=2000 for the full campaign"
