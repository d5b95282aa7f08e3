"""Figures for the diagnostics (matplotlib, Agg backend)."""

from __future__ import annotations


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def energy_plot(energy: dict, out_png) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    layers = range(1, len(energy["kinetic"]) + 1)
    for key, style in (("kinetic", "o-"), ("potential", "s-"), ("total", "k^-"), ("dissipated", "v--")):
        ax.plot(layers, energy[key], style, label=key)
    ax.set_xlabel("integration step ℓ")
    ax.set_ylabel("mean energy per token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def histogram(values, out_png, xlabel: str, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    ax.hist(values, bins=80, color="tab:blue", alpha=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tokens")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def bars(labels, values, out_png, ylabel: str, title: str, ref: float | None = None) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    ax.bar(labels, values, color="tab:green")
    if ref is not None:
        ax.axhline(ref, color="k", ls="--", lw=1, label="static null")
        ax.legend()
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
