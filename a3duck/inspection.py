"""`a3duck inspect`: what an IA3 adapter learned, as numbers and pictures.

IA3 vectors start at exactly 1.0 (identity); how far each moved from 1.0 shows where training
changed the model. Plots (PNG, matplotlib): a layer x module heatmap of mean |scale - 1|, the
distribution of scales per module, and per-layer mean ± std curves.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from a3duck import adapter_folder
from a3duck.files import atomic_write, atomic_write_text

KEY = re.compile(r"layers\.(\d+)\..*?([A-Za-z_]+)\.ia3_l")


def load_vectors(adapter: Path) -> dict[str, dict[int, object]]:
    """{module: {layer: 1-D float tensor of scales}} from the adapter's weights file."""
    vectors: dict[str, dict[int, object]] = defaultdict(dict)
    for key, tensor in adapter_folder.tensors(adapter).items():
        match = KEY.search(key)
        if match:
            vectors[match.group(2)][int(match.group(1))] = tensor.float().flatten()
    if not vectors:
        from a3duck.errors import A3DuckError

        raise A3DuckError(f"{adapter}: no IA3 vectors (keys ending in .ia3_l) in the adapter")
    return dict(vectors)


def module_stats(vectors: dict) -> dict[str, dict[str, float]]:
    import torch

    stats = {}
    for module, layers in sorted(vectors.items()):
        allv = torch.cat(list(layers.values()))
        stats[module] = {"count": int(allv.numel()), "min": float(allv.min()),
                         "max": float(allv.max()), "mean": float(allv.mean()),
                         "mean_abs_change": float((allv - 1).abs().mean())}
    return stats


def inspect_adapter(adapter: Path, out: Path) -> dict:
    """Compute the summary, write the plots and inspect.json into ``out``; return the summary."""
    config = adapter_folder.read_config(adapter)
    vectors = load_vectors(adapter)
    stats = module_stats(vectors)
    summary = {
        "base_model": adapter_folder.recorded_base(adapter),
        "target_modules": sorted(config.get("target_modules") or []),
        "feedforward_modules": sorted(config.get("feedforward_modules") or []),
        "trainable_parameters": sum(s["count"] for s in stats.values()),
        "adapter_bytes": adapter_folder.weights_file(adapter).stat().st_size,
        "layers": 1 + max(max(layers) for layers in vectors.values()),
        "modules": stats,
        "plots": [],
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in ((adapter_folder.HEATMAP, _heatmap), ("ia3_distribution.png", _distribution),
                       ("ia3_layers.png", _per_layer)):
        _save_figure(draw(vectors), out / name)
        summary["plots"].append(name)
    atomic_write_text(out / "inspect.json", json.dumps(summary, indent=2))
    return summary


def format_summary(s: dict) -> str:
    lines = [f"base model:           {s['base_model']}",
             (f"target modules:       {', '.join(s['target_modules'])} "
              f"(feed-forward: {', '.join(s['feedforward_modules'])})"),
             f"trainable parameters: {s['trainable_parameters']:,} over {s['layers']} layers",
             f"adapter file:         {s['adapter_bytes'] / 1024:.1f} KiB",
             f"{'module':<12}{'min':>9}{'mean':>9}{'max':>9}{'mean|s-1|':>11}"]
    for module, m in s["modules"].items():
        lines.append(f"{module:<12}{m['min']:>9.4f}{m['mean']:>9.4f}{m['max']:>9.4f}"
                     f"{m['mean_abs_change']:>11.5f}")
    return "\n".join(lines)


def _figure(width=7.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to PNG
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def _heatmap(vectors):
    import numpy as np

    modules = sorted(vectors)
    layers = 1 + max(max(v) for v in vectors.values())
    grid = np.full((len(modules), layers), np.nan)
    for i, module in enumerate(modules):
        for layer, vec in vectors[module].items():
            grid[i, layer] = float((vec - 1).abs().mean())
    fig, ax = _figure(max(6.0, layers * 0.25 + 2), 2.2 + 0.5 * len(modules))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(modules)), modules)
    ax.set_xlabel("layer")
    ax.set_title("IA3: mean |scale - 1| per layer and module (0 = unchanged)")
    fig.colorbar(image, ax=ax, label="mean |scale - 1|")
    fig.tight_layout()
    return fig


def _distribution(vectors):
    import torch

    fig, ax = _figure()
    for module in sorted(vectors):
        values = torch.cat(list(vectors[module].values())).numpy()
        ax.hist(values, bins=60, alpha=0.55, label=f"{module} ({values.size:,})")
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--", label="init (1.0)")
    ax.set_xlabel("learned scale")
    ax.set_ylabel("count")
    ax.set_title("IA3: distribution of learned scales")
    ax.legend()
    fig.tight_layout()
    return fig


def _per_layer(vectors):
    fig, ax = _figure()
    for module in sorted(vectors):
        layers = sorted(vectors[module])
        means = [float(vectors[module][la].mean()) for la in layers]
        stds = [float(vectors[module][la].std()) for la in layers]
        lows = [m - d for m, d in zip(means, stds)]
        highs = [m + d for m, d in zip(means, stds)]
        (line,) = ax.plot(layers, means, marker="o", markersize=3, label=f"{module} mean")
        ax.fill_between(layers, lows, highs, alpha=0.15, color=line.get_color())
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlabel("layer")
    ax.set_ylabel("scale (band: mean ± std)")
    ax.set_title("IA3: learned scales per layer")
    ax.legend()
    fig.tight_layout()
    return fig


def _save_figure(fig, path: Path) -> None:
    """savefig atomically (no half-written PNGs)."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
