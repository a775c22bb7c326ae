"""``tlearn push``: a run's timm model folder uploaded to the Hugging Face Hub with ``huggingface_hub``.

The folder is the one ``tlearn export --format timm`` writes (config, safetensors weights, model
card), checked against the run's model before anything is sent. The token comes from where
``huggingface_hub`` always looks (``HF_TOKEN``, or ``hf auth login``); offline, nothing is tried.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import ConfigError, RunError, one_line
from .paths import offline_mode
from .runs.spec import load_run
from .runs.timm_export import export_timm


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` as the Hub accepts it; ``ConfigError`` otherwise."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"'{repo_id}' is not a Hugging Face repository id ({one_line(err, 120)})") from None
    if repo_id.count("/") != 1:
        raise ConfigError(f"'{repo_id}' is not a Hugging Face repository id: give it as ORG/NAME")
    return repo_id


def push_run(run_dir: str | Path, repo_id: str, private: bool = False) -> str:
    """Export ``run_dir`` as a timm folder and upload it to the model repository ``repo_id``
    (created when missing); returns the repository's URL."""
    check_repo_id(repo_id)
    if offline_mode():
        raise RunError("cannot push to the Hugging Face Hub offline (TLEARN_OFFLINE or HF_HUB_OFFLINE is set)")
    run = load_run(run_dir)
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="tlearn-push-") as tmp:
        folder = Path(tmp) / repo_id.split("/")[1]
        export_timm(run, folder, hub_id=repo_id)
        try:
            api = HfApi()  # the token from HF_TOKEN or the saved login, as huggingface_hub finds it
            url = api.create_repo(repo_id, private=private, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=f"tlearn run {run.run_dir.name}")
        except Exception as err:  # no token, no network, no rights: huggingface_hub raises many kinds
            raise RunError(
                f"cannot push to {repo_id} on the Hugging Face Hub ({one_line(err, 160)}); "
                "check the connection and the token (hf auth login, or HF_TOKEN)"
            ) from None
    return str(url)
