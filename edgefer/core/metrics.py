"""Classification metrics in numpy alone, so training, export and benchmarks report the same way."""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, n: int) -> np.ndarray:
    """Rows are the true class, columns the predicted class."""
    return np.bincount(np.asarray(y_true) * n + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def classification_report(y_true, y_pred, labels) -> dict:
    """accuracy, per-class precision/recall/F1/support, macro and weighted averages, Cohen's kappa
    and the confusion matrix, as one JSON-ready dict."""
    n = len(labels)
    cm = confusion(y_true, y_pred, n).astype(np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    total = cm.sum()
    accuracy = tp.sum() / total if total else 0.0
    expected = (support * predicted).sum() / total**2 if total else 0.0
    kappa = (accuracy - expected) / (1 - expected) if expected < 1 else 0.0
    present = support > 0
    weights = support / total if total else np.zeros(n)
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return {
        "accuracy": float(accuracy),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * weights).sum()),
        "weighted_precision": float((precision * weights).sum()),
        "weighted_recall": float((recall * weights).sum()),
        "cohen_kappa": float(kappa),
        "support": int(total),
        "labels": list(labels),
        "per_class": per_class,
        "confusion_matrix": cm.astype(int).tolist(),
    }


def format_report(report: dict) -> str:
    lines = [f"{'class':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, m in report["per_class"].items():
        lines.append(f"{label:<22}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
    lines.append(
        f"{'macro avg':<22}{report['macro_precision']:>10.3f}{report['macro_recall']:>10.3f}{report['macro_f1']:>10.3f}{report['support']:>10d}"
    )
    lines.append(
        f"{'weighted avg':<22}{report['weighted_precision']:>10.3f}{report['weighted_recall']:>10.3f}{report['weighted_f1']:>10.3f}{report['support']:>10d}"
    )
    lines.append(
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   Cohen's kappa {report['cohen_kappa']:.4f}"
    )
    return "\n".join(lines)


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_recall(y_true, y_pred) -> float:
    """The mean of the per-class recalls over the classes present in y_true: each class weighs the
    same, as in a set of posed faces with about as many of each expression."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def paired_difference(
    y_true, pred_a, pred_b, metric=accuracy, draws: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """metric(b) − metric(a) on the same items, with an interval from a paired bootstrap: the items
    are drawn with replacement, the same draw scoring both models, so what the two share cancels
    and the interval is far narrower than either figure's own. An interval holding 0 says these
    items cannot tell the two apart. It says nothing of the spread between training runs (seeds),
    which can be larger."""
    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not len(y) == len(a) == len(b) or not len(y):
        raise ValueError(
            f"paired_difference: {len(y)} truths, {len(a)} and {len(b)} predictions; "
            "score both models on the same items"
        )
    rng = np.random.default_rng(seed)
    diffs = np.empty(draws)
    for k in range(draws):
        i = rng.integers(0, len(y), len(y))
        diffs[k] = metric(y[i], b[i]) - metric(y[i], a[i])
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {
        "difference": round(metric(y, b) - metric(y, a), 4),
        "low": round(float(low), 4),
        "high": round(float(high), 4),
        "items": int(len(y)),
        "level": level,
    }
