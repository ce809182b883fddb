"""End-of-run figures: the learning curve and the action-cycle histogram (PNG files)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curve(path: str, steps: list[int], returns: list[float], title: str,
                        references: dict[str, float] | None = None, window: int = 20) -> None:
    """Episode return against env steps, with a moving average and horizontal reference lines.

    Args:
        path: PNG file to write.
        steps: env step at the end of each episode.
        returns: return of each episode.
        title: the figure's title.
        references: label -> return, e.g. {"scripted expert": 9.1, "random policy": 0.4}.
        window: episodes in the moving average.
    """
    plot_learning_curves(path, {"episode return": (steps, returns)}, title, "env steps", references, window)


def plot_learning_curves(path: str, curves: dict[str, tuple[list[float], list[float]]], title: str,
                         xlabel: str, references: dict[str, float] | None = None, window: int = 20) -> None:
    """Several runs' episode returns in one figure, each with its moving average, and reference lines.

    Args:
        path: PNG file to write.
        curves: label -> (x of each episode's end, e.g. env steps or minutes; return of each episode).
        title: the figure's title.
        xlabel: what x is, with its unit.
        references: label -> return, drawn as horizontal lines.
        window: episodes in the moving average.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, (xs, returns)), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ax.plot(xs, returns, ".", alpha=0.35, color=colour, label=label)
        if len(returns) >= window:
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(xs[window - 1:], smooth, "-", color=colour, label=f"mean of {window} episodes"
                    if len(curves) == 1 else f"{label}, mean of {window}")
    for (label, value), style in zip((references or {}).items(), ("--", ":", "-.")):
        ax.axhline(value, linestyle=style, color="gray", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_cycle_histogram(path: str, periods_s: np.ndarray, dt: float, title: str) -> None:
    """Histogram of action-cycle periods (ms) with the nominal dt and p50/p99 marked."""
    ms = np.asarray(periods_s, dtype=np.float64) * 1e3
    fig, ax = plt.subplots(figsize=(7, 4))
    if ms.size:
        ax.hist(ms, bins=100, log=True)
        for q, style in ((50, "--"), (99, ":")):
            value = np.percentile(ms, q)
            ax.axvline(value, linestyle=style, color="black", label=f"p{q} {value:.1f} ms")
    ax.axvline(dt * 1e3, color="red", label=f"dt {dt * 1e3:.0f} ms")
    ax.set_xlabel("action-cycle period (ms)")
    ax.set_ylabel("cycles")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
