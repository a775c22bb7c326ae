"""DDP: process layout rules, and two real CPU processes (gloo) against one on MNIST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlearn.config import TrainConfig
from tlearn.errors import ConfigError
from tlearn.training.distributed import check_distributed, launch_rank, per_process_batch, trainer_options

RANK_VARS = (
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "TLEARN_RUN_DIR",
    "MASTER_ADDR",
    "TORCHELASTIC_RUN_ID",
    "WORLD_SIZE",
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in RANK_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_batch_is_split_across_processes():
    assert per_process_batch(TrainConfig(batch_size=64)) == 64
    assert per_process_batch(TrainConfig(batch_size=64, devices=2)) == 32
    assert per_process_batch(TrainConfig(batch_size=64, devices=2, num_nodes=2)) == 16
    with pytest.raises(ConfigError, match="does not split evenly over 4 processes"):
        check_distributed(TrainConfig(batch_size=30, devices=2, num_nodes=2))


def test_single_process_ignores_launcher_environment(clean_env):
    clean_env.setenv("RANK", "3")  # e.g. left over from an outer job: one-process runs never read it
    assert launch_rank(TrainConfig()) == 0
    assert trainer_options(TrainConfig()) == {"devices": 1}


@pytest.mark.parametrize(
    "env, rank",
    [
        ({}, 0),
        ({"LOCAL_RANK": "1"}, 1),  # Lightning's launcher, second process on the first machine
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, 2),  # first process on the second machine
        ({"RANK": "0", "LOCAL_RANK": "0"}, 0),  # torchrun
        ({"RANK": "5", "LOCAL_RANK": "1"}, 5),
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "3"}, 3),
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0", "LOCAL_RANK": "0"}, 0),  # a plain one-task SLURM job
        (
            {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "LOCAL_RANK": "1"},
            1,
        ),  # Lightning's launcher inside interactive SLURM
    ],
)
def test_launch_rank_reads_each_launcher(clean_env, env, rank):
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert launch_rank(TrainConfig(devices=2, num_nodes=2, batch_size=64)) == rank


def test_ddp_options_and_no_environment_writes(clean_env):
    clean_env.delenv("PL_GLOBAL_SEED", raising=False)
    options = trainer_options(TrainConfig(devices=2, seed=7))
    assert options == {"devices": 2, "num_nodes": 1, "strategy": "ddp", "sync_batchnorm": False}
    assert "PL_GLOBAL_SEED" not in os.environ  # the run's seed_everything sets it, inside launch_environment
    assert trainer_options(TrainConfig(devices=2), "cuda")["sync_batchnorm"] is True  # no CPU SyncBatchNorm in torch


def test_a_launcher_with_more_processes_than_asked_for_is_refused(clean_env):
    clean_env.setenv("WORLD_SIZE", "4")  # e.g. torchrun --nproc-per-node 4 without --devices 4
    with pytest.raises(ConfigError, match="started 4 processes"):
        check_distributed(TrainConfig())
    check_distributed(TrainConfig(devices=4))


def test_several_machines_need_a_launcher(clean_env):
    config = TrainConfig(devices=2, num_nodes=2)
    with pytest.raises(ConfigError, match="needs a launcher on every machine"):
        check_distributed(config)
    clean_env.setenv("SLURM_NTASKS", "4")
    check_distributed(config)


def test_gradual_unfreezing_is_refused_under_ddp():
    with pytest.raises(ConfigError, match="cannot run under DDP"):
        check_distributed(TrainConfig(devices=2, schedule="gradual"))
    check_distributed(TrainConfig(schedule="gradual"))  # fine in one process


def test_a_time_budget_is_refused_under_ddp():
    with pytest.raises(ConfigError, match="--time-budget fits the epochs in one process"):
        check_distributed(TrainConfig(devices=2, time_budget=60))
    check_distributed(TrainConfig(time_budget=60))


def _train(root: Path, cwd: Path, out: str, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS and k != "OMP_NUM_THREADS"}
    env.update(TLEARN_DATA_DIR=str(root), PYTHONWARNINGS="ignore")
    args = [sys.executable, "-m", "tlearn.cli", "train", "--no-progress", "--out", out, *extra]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads((cwd / out / "metrics.json").read_text())


FINE_TUNE = [
    "--train-size",
    "1000",
    "--test-size",
    "2000",
    "--val-source",
    "none",
    "--epochs",
    "6",
    "--image-size",
    "48",
]


def test_two_cpu_processes_reach_single_process_accuracy(mnist_root, tmp_path):
    """EfficientNet-Lite0 fully fine-tuned on 1,000 MNIST digits, tested on 2,000, seed 0."""
    single = _train(mnist_root, tmp_path, "one", *FINE_TUNE)
    ddp = _train(mnist_root, tmp_path, "two", *FINE_TUNE, "--devices", "2", "--strategy", "ddp")
    assert single["processes"] == 1 and ddp["processes"] == 2
    assert ddp["complete"] and ddp["test_samples"] == 2000
    # Both reach about 97 %; CPU processes normalise over half batches, so the trajectories differ a
    # little (measured |difference| <= 0.3 pt over seeds 0-2): 2 pt leaves room for any CPU's rounding.
    assert single["test_accuracy"] > 0.9 and ddp["test_accuracy"] > 0.9
    assert ddp["test_accuracy"] >= single["test_accuracy"] - 0.02, (ddp["test_accuracy"], single["test_accuracy"])
    assert len(ddp["history"]) == 6
    # One run directory, written once: no second timestamped run from the other rank.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert (tmp_path / "two" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "two" / "report.html").is_file()


def test_feature_cache_under_ddp(mnist_root, tmp_path):
    """Frozen backbone: rank 0 stores the activations, the launched rank reads the same files."""
    cache = tmp_path / "cache"
    metrics = _train(
        mnist_root,
        tmp_path,
        "run",
        "--freeze",
        "backbone",
        "--augment",
        "none",
        "--train-size",
        "500",
        "--test-size",
        "500",
        "--val-size",
        "200",
        "--epochs",
        "8",
        "--image-size",
        "48",
        "--devices",
        "2",
        "--cache-dir",
        str(cache),
    )
    assert metrics["feature_cache"]["used"] and metrics["processes"] == 2
    assert len(list(cache.glob("*.safetensors"))) == 3  # train, val, test: one file each, shared by both ranks
    assert metrics["test_accuracy"] > 0.7


def test_launcher_environment_is_restored_after_a_run(clean_env):
    """Lightning's launcher leaves WORLD_SIZE & co. in rank 0's environment; a later run must start clean."""
    from tlearn.training.distributed import launch_environment

    clean_env.setenv("OMP_NUM_THREADS", "2")
    with launch_environment():
        os.environ.update(
            WORLD_SIZE="2",
            LOCAL_RANK="0",
            TLEARN_RUN_DIR="/tmp/x",
            OMP_NUM_THREADS="1",
            PL_GLOBAL_SEED="3",
            PL_SEED_WORKERS="1",
        )
    assert "PL_GLOBAL_SEED" not in os.environ and "PL_SEED_WORKERS" not in os.environ
    assert "WORLD_SIZE" not in os.environ and "LOCAL_RANK" not in os.environ and "TLEARN_RUN_DIR" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "2"
    check_distributed(TrainConfig())  # no leftover WORLD_SIZE to refuse a one-process run
