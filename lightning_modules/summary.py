"""Run summary (``summary.json``) and layout plots of a trained spatial network.

Pure functions of a model (and a few numbers): the callbacks
(:class:`~lightning_modules.callbacks.RunSummary`,
:class:`~lightning_modules.callbacks.LayoutPlots`) call them; nothing here
imports Lightning. Plots use matplotlib's Agg backend, so
they work without a display.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spatial_layers import NeuronPositions, SpatialDelay, count_parameters, delay_layers

#: Keys every summary.json holds (the contract in INTERFACES.md).
SUMMARY_KEYS: tuple[str, ...] = (
    "test_acc",
    "val_acc",
    "n_params",
    "n_coordinates",
    "n_weights",
    "sparsity",
    "epochs",
    "wall_time_s",
    "test_acc_epoch",
)


def sparsity(model: nn.Module) -> float:
    """Fraction of absent synapses (mask False) over all SpatialDelay layers; 0 when dense."""
    total = active = 0
    for layer in delay_layers(model):
        total += layer.mask.numel()
        active += int(layer.mask.sum())
    return 0.0 if total == 0 else 1.0 - active / total


def model_summary(model: nn.Module) -> dict[str, Any]:
    """Parameter accounting of ``model``: counts by kind, sparsity, delay mode and dimension."""
    count = count_parameters(model)
    layers = delay_layers(model)
    modes = sorted({layer.delay_mode for layer in layers})
    dims = sorted({layer.pre.dim for layer in layers if layer.delay_mode == "spatial"})
    return {
        "n_params": count.total,
        "n_coordinates": count.coordinates,
        "n_weights": count.weights,
        "n_free_delays": count.free_delays,
        "n_other": count.other,
        "sparsity": sparsity(model),
        "delays": modes[0] if len(modes) == 1 else modes,
        "dim": dims[0] if len(dims) == 1 else (dims or 0),
    }


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """Writes ``summary`` as indented JSON; refuses one that lacks a :data:`SUMMARY_KEYS` key."""
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ValueError(f"summary lacks the keys {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ------------------------------------------------------------------ plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def populations(model: nn.Module) -> list[tuple[str, NeuronPositions]]:
    """Named position modules of ``model``, input first, each shared module once.

    Names are "input", "hidden 1", ..., "output" when the populations form a
    chain through the feed-forward layers, else "population i".
    """
    ordered: list[NeuronPositions] = []
    for layer in delay_layers(model):
        if layer.delay_mode != "spatial":
            continue
        for positions in (layer.pre, layer.post):
            if all(positions is not seen for seen in ordered):
                ordered.append(positions)
    if len(ordered) < 2:
        return [(f"population {i}", p) for i, p in enumerate(ordered)]
    names = ["input"] + [f"hidden {i}" for i in range(1, len(ordered) - 1)] + ["output"]
    return list(zip(names, ordered, strict=True))


def _strongest(layer: SpatialDelay, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    weight = layer.effective_weight().detach()
    flat = weight.abs().flatten()
    k = min(top_k, int((flat > 0).sum()))
    if k == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, weight.new_zeros(0)
    _, index = flat.topk(k)
    post, pre = index // weight.shape[1], index % weight.shape[1]
    return post, pre, weight.flatten()[index]


def plot_layout(
    model: nn.Module, path: str | Path, *, top_k: int = 100, title: str = ""
) -> Path | None:
    """Scatter of every population's coordinates with the ``top_k`` strongest synapses per layer.

    1-D positions are drawn against the population index, 2-D as they are,
    3-D (and the first three coordinates of higher D) in a 3-D axes. Lines
    join the strongest synapses of each layer: red excitatory, blue
    inhibitory, opacity by |w|. Returns None (and writes nothing) for a
    model without coordinates (delays "free" or "none").
    """
    pops = populations(model)
    if not pops:
        return None
    plt = _pyplot()
    dim = pops[0][1].dim
    fig = plt.figure(figsize=(6.5, 6))
    ax = fig.add_subplot(projection="3d" if dim >= 3 else None)
    index_of = {id(p): i for i, (_, p) in enumerate(pops)}

    def points(positions: NeuronPositions) -> list[torch.Tensor]:
        coords = positions.coords.detach().cpu().float()
        if dim == 1:
            level = torch.full_like(coords[:, 0], float(index_of[id(positions)]))
            return [coords[:, 0], level]
        return [coords[:, i] for i in range(min(dim, 3))]

    for layer in delay_layers(model):
        if layer.delay_mode != "spatial" or layer.pre is layer.post:
            continue
        post, pre, weight = _strongest(layer, top_k)
        if weight.numel() == 0:
            continue
        src, dst = points(layer.pre), points(layer.post)
        scale = float(weight.abs().max())
        for i, j, w in zip(post.tolist(), pre.tolist(), weight.tolist(), strict=True):
            xs = [
                [axis[j].item(), dst_axis[i].item()]
                for axis, dst_axis in zip(src, dst, strict=True)
            ]
            ax.plot(
                *xs,
                color="tab:red" if w > 0 else "tab:blue",
                alpha=0.15 + 0.6 * abs(w) / scale,
                linewidth=0.8,
            )
    for name, positions in pops:
        style = {"input": ("D", 45), "output": ("*", 140)}.get(name, ("o", 14))
        ax.scatter(
            *points(positions),
            marker=style[0],
            s=style[1],
            zorder=3,
            edgecolors="black" if style[0] != "o" else "none",
            linewidths=0.5,
            label=f"{name} ({positions.num_neurons})",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("population" if dim == 1 else "y")
    if dim >= 3:
        ax.set_zlabel("z")
    elif dim == 2:
        ax.set_aspect("equal", adjustable="datalim")
    suffix = f" (first 3 of {dim} coordinates)" if dim > 3 else ""
    ax.set_title(
        (title + "\n" if title else "") + f"neuron positions, D = {dim}{suffix}; "
        f"top {top_k} synapses per layer"
    )
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_delay_histogram(model: nn.Module, path: str | Path, *, title: str = "") -> Path | None:
    """Histogram of the delays (steps) of every active synapse, one panel per layer.

    Returns None for a model without SpatialDelay layers.
    """
    layers = delay_layers(model)
    if not layers:
        return None
    fig, axes = panel_grid(len(layers), max_cols=3, panel=(4, 3))
    for ax, (index, layer) in zip(axes, enumerate(layers), strict=True):
        with torch.no_grad():
            delays = layer.delays()[layer.mask].cpu().float()
        bins = torch.arange(layer.max_delay + 2).float() - 0.5
        ax.hist(delays.numpy(), bins=bins.numpy(), color="tab:green")
        ax.set_title(
            f"layer {index}: {layer.in_features}->{layer.out_features}, {layer.delay_mode}",
            fontsize=9,
        )
        ax.set_xlabel("delay (steps)")
        ax.set_ylabel("synapses")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def panel_grid(count: int, *, max_cols: int, panel: tuple[float, float]) -> tuple[Any, list]:
    """A figure of ``count`` panels in rows of at most ``max_cols``, ``panel`` (width, height)
    inches each; the grid's cells past ``count`` are hidden. Returns the figure and the
    ``count`` axes in reading order."""
    cols = min(count, max_cols)
    rows = math.ceil(count / cols)
    fig, axes = _pyplot().subplots(
        rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False
    )
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def save_plots(
    model: nn.Module, directory: str | Path, *, top_k: int = 100, suffix: str = ""
) -> list[Path]:
    """Writes ``layout{suffix}.png`` and ``delays{suffix}.png`` into ``directory``."""
    directory = Path(directory)
    written: Sequence[Path | None] = (
        plot_layout(model, directory / f"layout{suffix}.png", top_k=top_k),
        plot_delay_histogram(model, directory / f"delays{suffix}.png"),
    )
    return [p for p in written if p is not None]
