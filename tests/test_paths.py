"""Where tlearn looks: data root, caches, the offline switch."""

from tlearn.paths import data_root, feature_cache_dir, offline_mode, torch_hub_checkpoint


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TLEARN_DATA_DIR", str(tmp_path / "env"))
    assert data_root(str(tmp_path / "flag")) == tmp_path / "flag"
    assert data_root(None) == tmp_path / "env"
    monkeypatch.delenv("TLEARN_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root(None) == tmp_path / "cache" / "tlearn" / "datasets"
    assert feature_cache_dir(None) == tmp_path / "cache" / "tlearn" / "features"
    assert feature_cache_dir(str(tmp_path / "c")) == tmp_path / "c"


def test_offline_switch(monkeypatch):
    monkeypatch.delenv("TLEARN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not offline_mode()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_mode()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not offline_mode()


def test_torch_hub_checkpoint_follows_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert (
        torch_hub_checkpoint("https://x/y/resnet18-f37072fd.pth")
        == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    )
