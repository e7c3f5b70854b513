"""PNG plots a person would rather look at than read: confusion matrix, curves, class balance.

Written atomically like every other artifact. matplotlib is imported here only, on demand.
"""

from __future__ import annotations

import numpy as np

from .files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def confusion_matrix_png(cm, labels, path, title="Confusion matrix (rows: true, normalised)"):
    plt = _pyplot()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title)
    _save(fig, path)


def curves_png(history: dict, path):
    """Loss and accuracy per epoch, train against validation."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if history.get(prefix + key):
                ax.plot(epochs, history[prefix + key], style, marker="o", label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole: 1, 2, 3, not 1.2
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def balance_png(counts: dict, labels, path, title="Images per class"):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 3.8))
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(labels))
    for k, (split, values) in enumerate(counts.items()):
        bars = ax.bar(x + k * width, values, width, label=split)
        ax.bar_label(bars, fontsize=6)
    ax.set_xticks(x + width * (len(counts) - 1) / 2, labels, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)
