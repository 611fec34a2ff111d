"""Probabilities that mean what they say: temperature scaling (Guo et al. 2017) and its reliability diagram.

A network trained with cross-entropy is usually over- or under-confident; the device decides whether a
face's emotion is clear enough to report from the top probability (``[emotion] min_confidence``), so a
0.6 must mean that about 60% of people see that emotion. One temperature ``T`` is fitted on the
validation faces' people's votes (their shares: the doubt people had is what the model should have,
ties and split votes included); the device applies it to every reading
(``device/perception/emotion.py::apply_temperature``). Argmax, and so accuracy, does not change; the
card records ``T`` and the expected calibration error before and after, where a face's "agreement"
is the share of its votes for the model's top class (with one label per face: 1 if it is right).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..device.perception.emotion import apply_temperature

log = logging.getLogger(__name__)

T_RANGE = (0.05, 20.0)


def nll(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of ``probs`` against target distributions (one-hot or vote shares)."""
    return float(-(targets * np.log(np.clip(probs, 1e-7, 1.0))).sum(axis=1).mean())


def fit_temperature(probs: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the cross-entropy against ``targets``: a golden-section search
    on log T (the loss is smooth and has one minimum in T for softmax outputs)."""
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    g = (np.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return nll(apply_temperature(probs, float(np.exp(log_t))), targets)

    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - g) * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2))


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: mean confidence, accuracy and count; and the expected calibration error."""

    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def reliability(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> Reliability:
    """Top-class confidence against the share of people who see the top class (the target's share
    for it: 1 or 0 with one label per face), in equal-width bins."""
    conf = probs.max(axis=1)
    right = targets[np.arange(len(targets)), probs.argmax(axis=1)].astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_conf = np.bincount(which, weights=conf, minlength=bins) / np.maximum(counts, 1)
    acc = np.bincount(which, weights=right, minlength=bins) / np.maximum(counts, 1)
    ece = float((counts / max(1, len(conf)) * np.abs(acc - mean_conf)).sum())
    return Reliability(mean_conf, acc, counts, ece)


def calibrate(probs: np.ndarray, targets: np.ndarray) -> dict:
    """Fit T on (probabilities, target distributions), and say what it did for the card."""
    t = fit_temperature(probs, targets)
    before, after = reliability(probs, targets), reliability(apply_temperature(probs, t), targets)
    out = {"temperature": round(t, 4),
           "nll_before": round(nll(probs, targets), 4),
           "nll_after": round(nll(apply_temperature(probs, t), targets), 4),
           "ece_before": round(before.ece, 4), "ece_after": round(after.ece, 4)}
    log.info("temperature %.3f: ECE %.3f -> %.3f, NLL %.3f -> %.3f", t, before.ece, after.ece,
             out["nll_before"], out["nll_after"])
    return out


def plot_reliability(probs: np.ndarray, targets: np.ndarray, temperature: float, title: str, out_png: Path) -> None:
    """The reliability diagram before and after the temperature, as a PNG beside the card."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="perfectly calibrated")
    for p, name, style in ((probs, "before", "o--"),
                           (apply_temperature(probs, temperature), f"after (temperature x{temperature:.2f})", "s-")):
        r = reliability(p, targets)
        used = r.counts > 0
        ax.plot(r.confidence[used], r.accuracy[used], style, label=f"{name} (ECE {r.ece:.3f})")
    ax.set(xlabel="confidence of the top emotion", ylabel="share of people who see that emotion",
           xlim=(0, 1), ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
