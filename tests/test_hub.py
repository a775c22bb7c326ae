"""tlearn push: the run's timm folder goes to the Hugging Face Hub through huggingface_hub (faked here: the
tests never reach the network); offline, a bad repository id or a refused upload are one-line errors."""

import pytest

from tests.runs.test_timm_export import _untrained_run
from tlearn.cli import main
from tlearn.errors import ConfigError, RunError
from tlearn.hub import push_run


class FakeApi:
    """Stands in for huggingface_hub.HfApi and keeps what would have been uploaded."""

    calls: list = []
    fail_with = None

    def create_repo(self, repo_id, private=False, exist_ok=False):
        if FakeApi.fail_with:
            raise FakeApi.fail_with
        FakeApi.calls.append(("create_repo", repo_id, private, exist_ok))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message):
        from pathlib import Path

        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        FakeApi.calls.append(("upload_folder", repo_id, files, commit_message))


@pytest.fixture
def online_fake_hub(monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("TLEARN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls, FakeApi.fail_with = [], None
    return FakeApi


def test_push_uploads_the_checked_timm_folder_with_a_card_that_loads_from_the_hub(tmp_path, online_fake_hub, capsys):
    run = _untrained_run(tmp_path / "run", "timm/resnet10t")
    assert main_code(["push", str(run.run_dir), "my-org/tiny-resnet", "--private"]) == 0
    (create, repo, private, exist_ok), (upload, repo2, files, message) = online_fake_hub.calls
    assert (create, repo, private, exist_ok) == ("create_repo", "my-org/tiny-resnet", True, True)
    assert (upload, repo2) == ("upload_folder", "my-org/tiny-resnet") and "run" in message
    assert sorted(files) == ["README.md", "config.json", "model.safetensors", "tlearn.yaml"]
    assert b'timm.create_model("hf-hub:my-org/tiny-resnet", pretrained=True)' in files["README.md"]
    assert "https://huggingface.co/my-org/tiny-resnet" in capsys.readouterr().out


def test_a_refused_upload_is_one_line_naming_the_token(tmp_path, online_fake_hub):
    run = _untrained_run(tmp_path / "run", "timm/resnet10t")
    online_fake_hub.fail_with = ConnectionError("Name or service not known")
    with pytest.raises(RunError, match="cannot push to my-org/x .*Name or service not known.*token"):
        push_run(run.run_dir, "my-org/x")


def test_offline_and_bad_repository_ids_are_one_line_errors(tmp_path, capsys):
    run = _untrained_run(tmp_path / "run", "timm/resnet10t")
    assert main_code(["push", str(run.run_dir), "my-org/x"]) == 2  # the tests run offline
    err = capsys.readouterr().err
    assert "offline" in err and len(err.strip().splitlines()) == 1
    for bad in ("no-owner", "a/b/c", "bad name/x"):
        with pytest.raises(ConfigError, match="repository id"):
            push_run(run.run_dir, bad)


def main_code(argv) -> int:
    try:
        main(argv)
    except SystemExit as done:
        return done.code
    return 0
