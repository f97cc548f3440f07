"""Evaluation plots: a confusion matrix per method and per-genre F1 bars comparing the methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coverlens.workspace import atomic_path

ANNOTATE_UP_TO = 15  # genres; beyond that the counts would not be readable


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, target: Path) -> Path:
    plt = _pyplot()
    try:
        fig.tight_layout()
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return target


def confusion_png(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str,
                  target: Path) -> Path:
    """Rows: true genre, columns: predicted genre; colour = share of the row, text = count."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(confusion, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(4.5, 0.45 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true genre")
    ax.set_xticks(range(len(classes)), labels=list(classes), rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), labels=list(classes))
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    ax.set_title(title)
    if len(classes) <= ANNOTATE_UP_TO:
        for (row, col), count in np.ndenumerate(counts):
            if count:
                ax.text(col, row, str(count), ha="center", va="center", fontsize=8,
                        color="white" if shares[row, col] > 0.5 else "black")
    return _save(fig, target)


def per_genre_f1_png(f1_by_method: Mapping[str, Mapping[str, float]], genres: Sequence[str],
                     target: Path) -> Path:
    """Grouped bars: one group per genre, one bar per method (a method's missing genre counts 0)."""
    import numpy as np

    plt = _pyplot()
    methods = list(f1_by_method)
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.3 * len(genres) * max(1, len(methods)) + 3) + 3.0, 4.8))
    positions = np.arange(len(genres))
    for n, method in enumerate(methods):
        values = [f1_by_method[method].get(g, 0.0) for g in genres]
        ax.bar(positions + (n - (len(methods) - 1) / 2) * width, values, width, label=method)
    ax.set_xticks(positions, labels=list(genres), rotation=60 if len(genres) > 6 else 0,
                  ha="right" if len(genres) > 6 else "center")
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("F1 on the held-out split")
    ax.set_title("Per-genre F1 by method")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, target)
