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
    per_class = {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                         "f1": float(f1[i]), "support": int(support[i])} for i, label in enumerate(labels)}
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
    lines.append(f"{'macro avg':<22}{report['macro_precision']:>10.3f}{report['macro_recall']:>10.3f}{report['macro_f1']:>10.3f}{report['support']:>10d}")
    lines.append(f"{'weighted avg':<22}{report['weighted_precision']:>10.3f}{report['weighted_recall']:>10.3f}{report['weighted_f1']:>10.3f}{report['support']:>10d}")
    lines.append(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   Cohen's kappa {report['cohen_kappa']:.4f}")
    return "\n".join(lines)
