"""Figures of a run."""

from tlearn.runs.plots import plot_accuracy_vs_size, plot_confusion_matrix, plot_curves


def test_figures_are_written(tmp_path):
    rows = [{"epoch": 1, "train_acc": 0.5, "val_acc": 0.6, "train_loss": 1.0}, {"epoch": 2, "train_acc": 0.7}]
    plot_curves(rows, "acc", tmp_path / "acc.png", "accuracy")
    plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], tmp_path / "cm.png", "test")
    grid = [
        {"backbone": "x", "init": "random", "freeze": "none", "train_size": n, "test_accuracy": a}
        for n, a in ((100, 0.5), (1000, 0.8))
    ]
    plot_accuracy_vs_size(grid, tmp_path / "size.png")
    for name in ("acc.png", "cm.png", "size.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
