"""Classification metrics in plain numpy (no scikit-learn on the device or in the base install)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    precision: np.ndarray  # per class
    recall: np.ndarray
    f1: np.ndarray
    confusion: np.ndarray  # rows: true class, columns: predicted

    def per_class(self, labels: tuple[str, ...]) -> dict[str, dict[str, float]]:
        return {
            lab: {
                "precision": round(float(self.precision[i]), 4),
                "recall": round(float(self.recall[i]), 4),
                "f1": round(float(self.f1[i]), 4),
                "support": int(self.confusion[i].sum()),
            }
            for i, lab in enumerate(labels)
        }


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Scores:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true.astype(int), y_pred.astype(int)), 1)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    present = cm.sum(axis=1) > 0
    return Scores(
        accuracy=float(tp.sum() / max(1, cm.sum())),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        confusion=cm,
    )


def plot_confusion(cm: np.ndarray, labels: tuple[str, ...], title: str, out_png) -> None:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
