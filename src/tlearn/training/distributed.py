"""Several processes (DDP through Lightning): who writes, where, and with which batch size.

Every rank runs the whole of :func:`tlearn.train`: Lightning's script launcher starts the other
local ranks by running the same command again with ``LOCAL_RANK`` set, and torchrun or SLURM
start each rank themselves. So each rank loads the data, builds the model and, with a frozen
part, reads the activations that rank 0 already stored in the disk feature cache (or computes
them when it started at the same time). Lightning shards the training batches with a
``DistributedSampler`` and all-reduces the gradients; tlearn makes sure that only rank 0 writes
the run directory and that the optimisation does not depend on the number of processes:
``batch_size`` is the total batch of one step, split evenly across the processes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# Rank 0 names its run directory here before Lightning launches the other local ranks; they
# inherit the environment and so write their (few) files into the same run.
RUN_DIR_ENV = "TLEARN_RUN_DIR"


def world_size(config: Any) -> int:
    """Processes taking part: ``devices`` per machine times ``num_nodes`` machines."""
    return config.devices * config.num_nodes


def is_distributed(config: Any) -> bool:
    """True when training runs under DDP (asked for, or more than one process)."""
    return config.strategy == "ddp" or world_size(config) > 1


def check_distributed(config: Any, command: str = "train") -> None:
    """Refuse settings that DDP cannot honour, with what to do instead."""
    launched = _number("WORLD_SIZE", 1)
    if not is_distributed(config):
        if launched > 1:  # torchrun started several copies, but each would train alone on all the data
            raise ConfigError(
                f"the launcher started {launched} processes but --devices/--num-nodes ask for one; "
                "pass --devices (per machine) and --num-nodes to match it"
            )
        return
    processes = world_size(config)
    if command != "train":
        raise ConfigError(f"tlearn {command} runs in one process; drop --devices/--num-nodes/--strategy")
    if config.batch_size % processes:
        raise ConfigError(
            f"--batch-size {config.batch_size} does not split evenly over {processes} processes "
            f"(it is the total batch of one step); use a multiple of {processes}"
        )
    if config.num_nodes > 1 and not _launched_on_a_cluster():
        # Without a launcher on every machine, rank 0 would wait for the other nodes forever.
        raise ConfigError(
            f"--num-nodes {config.num_nodes} needs a launcher on every machine: start tlearn with torchrun or srun, "
            "or set MASTER_ADDR, MASTER_PORT and NODE_RANK on each (see README, 'Several processes and machines')"
        )
    if config.time_budget:
        raise ConfigError("--time-budget fits the epochs in one process; drop it or use one process")
    if config.schedule == "gradual":
        # DDP registers the trainable parameters once, when it wraps the model: parameters
        # unfrozen later would never be synchronised and the ranks would drift apart.
        raise ConfigError(
            "--schedule gradual cannot run under DDP (parameters unfrozen mid-run are not synchronised); "
            "use one process"
        )


def _launched_on_a_cluster() -> bool:
    """True when torchrun, SLURM or a hand-made Lightning cluster environment started this process."""
    env = os.environ
    return (
        "RANK" in env
        or "TORCHELASTIC_RUN_ID" in env
        or "SLURM_NTASKS" in env
        or ("NODE_RANK" in env and "MASTER_ADDR" in env)
    )


def per_process_batch(config: Any) -> int:
    """The batch each process draws, so that one step still sees ``batch_size`` images in all."""
    return config.batch_size // world_size(config) if is_distributed(config) else config.batch_size


def launch_rank(config: Any) -> int:
    """This process's global rank, as its launcher announced it in the environment (0 alone).

    Read before Lightning sets up the process group, because rank 0 alone creates the run
    directory. torchrun sets ``RANK``; SLURM ``SLURM_PROCID``; Lightning's own launcher
    ``NODE_RANK`` and ``LOCAL_RANK``.
    """
    if not is_distributed(config):
        return 0
    if "RANK" in os.environ:
        return _number("RANK")
    # Lightning's own launcher (also inside an interactive SLURM job, where SLURM_PROCID is 0
    # for every process it starts): a non-zero local or node rank means "not rank 0".
    local = _number("NODE_RANK") * config.devices + _number("LOCAL_RANK")
    if local:
        return local
    return _number("SLURM_PROCID") if _number("SLURM_NTASKS") > 1 else 0


def local_rank() -> int:
    """This process's rank on its machine (which GPU it drives)."""
    return _number("LOCAL_RANK") if "LOCAL_RANK" in os.environ else _number("SLURM_LOCALID")


def _number(name: str, default: int = 0) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def share_run_dir(run_dir: Path) -> None:
    """Let the ranks Lightning launches from this process find rank 0's run directory."""
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())


def follower_run_dir(config: Any) -> Path:
    """The run directory seen by a rank other than 0; never created by it.

    Lightning broadcasts rank 0's checkpoint folder to every rank, so for ranks started by
    torchrun or SLURM (which do not know rank 0's timestamped name) any placeholder works.
    """
    shared = os.environ.get(RUN_DIR_ENV)
    if shared:
        return Path(shared)
    return Path(config.out).expanduser() if config.out else Path("runs") / ".rank-placeholder"


def trainer_options(config: Any, device: str = "cpu") -> dict:
    """``pl.Trainer`` keyword arguments for the process layout in ``config``.

    (The DistributedSampler Lightning inserts shuffles with ``PL_GLOBAL_SEED``, which the run's
    ``seed_everything`` set to ``--seed``.)
    """
    if not is_distributed(config):
        return {"devices": 1}
    # On GPUs BatchNorm statistics are synchronised, so they come from the whole batch as in one
    # process; torch's SyncBatchNorm has no CPU implementation, so CPU processes keep their own.
    return {
        "devices": config.devices,
        "num_nodes": config.num_nodes,
        "strategy": "ddp",
        "sync_batchnorm": device == "cuda",
    }


# What Lightning's launcher (and tlearn) put into this process's environment for a DDP run.
LAUNCH_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
    "PL_GLOBAL_SEED",
    "PL_SEED_WORKERS",
    RUN_DIR_ENV,
)


@contextmanager
def launch_environment():
    """Restore those variables afterwards, so a later run in the same process starts clean.

    Every run (``train``, ``lr-find``) starts inside this block: seeding and the launcher write
    these variables, and nothing outside the run sees them.
    """
    saved = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
