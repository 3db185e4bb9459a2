"""Figures of a sweep's results (matplotlib; ``pip install 'tensorperf[plot]'``).

One function per kind, each taking a Dataset (a sweep's, or one read back with
:func:`tensorperf.interface.io.load`) and writing ``path`` (``.png``, ``.svg`` or ``.pdf``):

- :func:`pareto`: output tokens/s per GPU versus tokens/s per user, the Pareto frontier over
  layouts and batches, one curve per combination of the other dims (hardware, dtype, ...), as
  vendors publish throughput-versus-interactivity curves.
- :func:`breakdown`: stacked per-op time of prefill and of one decode step, one bar per point.
- :func:`memory`: memory per GPU as a heatmap over tp x pp (hatched: over the usable capacity).
- :func:`sensitivity`: a tornado chart of a :func:`tensorperf.sensitivity` Dataset: the change of
  the metric for a +-10% change of each parameter (linearized: elasticity x 10%).

Uses matplotlib's object API (``Figure``), never pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from tensorperf.interface.reductions import default_over, pareto_table
from tensorperf.validation import SpecError, unknown_name_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = (".png", ".svg", ".pdf")
MAX_BARS = 24
MAX_PANELS = 8
TORNADO_STEP = 0.10  # the +-10% change of each parameter in the tornado chart


def _figure(**kwargs: Any) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError("plotting needs matplotlib: pip install 'tensorperf[plot]'") from None
    return Figure(**kwargs)


def check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix not in FIGURE_FORMATS:
        raise SpecError(
            f"figure {str(path)!r}: unknown extension {path.suffix!r}; allowed: {', '.join(FIGURE_FORMATS)}"
        )
    return path


def _need(ds: xr.Dataset, kind: str, *names: str) -> None:
    for name in names:
        if name not in ds.variables:
            raise SpecError(
                f"plot {kind} needs the variable {name!r}, which these results lack "
                f"(they have: {', '.join(map(str, ds.data_vars)) or 'nothing'})"
            )


def _squeeze(da: xr.DataArray) -> xr.DataArray:
    return da.squeeze([d for d in da.dims if da.sizes[d] == 1], drop=False)


def _label(coords: Mapping[str, Any]) -> str:
    parts = []
    for dim, value in coords.items():
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        parts.append(str(value) if dim in ("model", "hardware", "weight_dtype") else f"{dim}={value}")
    return " ".join(parts) or "all"


def select(ds: xr.Dataset, assignments: Mapping[str, str]) -> xr.Dataset:
    """``ds.sel`` from text (``{"hardware": "b200", "tp": "8"}``), labels converted to each dim's type."""
    picks = {}
    for dim, text in assignments.items():
        if dim not in ds.dims:
            raise unknown_name_error("dimension in --sel", dim, ds.dims)
        labels = ds[dim].values
        value: Any = text
        if labels.dtype.kind in "iuf":
            try:
                value = float(text)
            except ValueError:
                raise SpecError(
                    f"--sel {dim}={text}: {dim} is numeric; choose one of {', '.join(map(str, labels.tolist()))}"
                ) from None
        if value not in labels.tolist():
            raise SpecError(f"--sel {dim}={text}: no such label; choose one of {', '.join(map(str, labels.tolist()))}")
        picks[dim] = value
    return ds.sel(picks)


def pareto(
    ds: xr.Dataset,
    path: str | Path,
    *,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    over: Any = None,
    where: Any = None,
) -> Path:
    """Frontier of ``y`` versus ``x`` over the layout and batch dims, one curve per other point."""
    path = check_path(path)
    _need(ds, "pareto", x, y)
    frame = pareto_table(ds, x, y, over=over, where=where)
    over_dims = _over_dims(ds, x, over)
    kept = [c for c in frame.columns if c in ds[x].dims and c not in over_dims and ds.sizes[c] > 1]
    fig = _figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    groups = frame.groupby(kept, sort=False) if kept else [((), frame)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        part = part.sort_values(x)
        ax.plot(part[x], part[y], marker="o", markersize=3, label=_label(dict(zip(kept, key))))
    if frame.empty:
        ax.text(0.5, 0.5, "no feasible point", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{x} ({ds[x].attrs.get('units', '')})".replace(" ()", ""))
    ax.set_ylabel(f"{y} ({ds[y].attrs.get('units', '')})".replace(" ()", ""))
    ax.set_title(f"Pareto frontier over {', '.join(over_dims)}")
    ax.grid(True, alpha=0.3)
    if kept:
        ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def _over_dims(ds: xr.Dataset, x: str, over: Any) -> list[str]:
    return list(over) if over else default_over(ds, list(ds[x].dims))


def _points(da: xr.DataArray, keep: tuple[str, ...], kind: str, limit: int) -> list[tuple[dict, xr.DataArray]]:
    """(coords, slice) for every combination of the dims of ``da`` other than ``keep``."""
    da = _squeeze(da)
    dims = [d for d in da.dims if d not in keep]
    n = int(np.prod([da.sizes[d] for d in dims], dtype=np.int64))
    if n > limit:
        sizes = ", ".join(f"{d}={da.sizes[d]}" for d in dims)
        raise SpecError(
            f"plot {kind}: {n} points ({sizes}) is more than {limit}; select fewer with "
            "--sel DIM=VALUE (e.g. --sel hardware=b200)"
        )
    if not dims:
        return [({}, da)]
    stacked = da.stack(_p=dims)
    out = []
    for i in range(stacked.sizes["_p"]):
        one = stacked.isel(_p=i)
        out.append(({d: one[d].item() for d in dims}, one))
    return out


def breakdown(ds: xr.Dataset, path: str | Path) -> Path:
    """Stacked per-op time of prefill (ms) and of one decode step (ms), one bar per feasible point."""
    path = check_path(path)
    _need(ds, "breakdown", "prefill_op_time", "decode_op_time")
    fig = _figure(figsize=(10, 4.5), layout="constrained")
    panels = (("prefill_op_time", "Prefill (ms, all layers)"), ("decode_op_time", "Decode step (ms, all layers)"))
    ops = [str(o) for o in ds["op"].values]
    axes = fig.subplots(1, 2)
    for ax, (name, title) in zip(axes, panels):
        points = [(c, p) for c, p in _points(ds[name], ("op",), "breakdown", MAX_BARS) if not np.isnan(p.values).all()]
        labels = [_label(c) for c, _ in points]
        values = np.array([p.transpose("op").values * 1e3 for _, p in points]).reshape(len(points), len(ops))
        bottom = np.zeros(len(points))
        colors = _colors(len(ops))
        for j, op in enumerate(ops):
            if not np.any(values[:, j] > 0):
                continue
            ax.bar(range(len(points)), values[:, j], bottom=bottom, label=op, color=colors[j])
            bottom += values[:, j]
        ax.set_xticks(
            range(len(points)),
            labels,
            rotation=30 if len(points) > 3 else 0,
            ha="right" if len(points) > 3 else "center",
            fontsize="small",
        )
        ax.set_title(title)
        ax.set_ylabel("ms")
        if not points:
            ax.text(0.5, 0.5, "no feasible point", ha="center", va="center", transform=ax.transAxes)
    handles, names = axes[0].get_legend_handles_labels()
    more = [(h, n) for h, n in zip(*axes[1].get_legend_handles_labels()) if n not in names]
    if handles or more:
        fig.legend(
            [*handles, *(h for h, _ in more)], [*names, *(n for _, n in more)], loc="outside right", fontsize="small"
        )
    fig.savefig(path)
    return path


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def memory(ds: xr.Dataset, path: str | Path) -> Path:
    """Memory per GPU (GB) over tp x pp, one panel per point of at most one other dim; cells above
    the usable capacity are hatched."""
    path = check_path(path)
    _need(ds, "memory", "memory_per_gpu")
    mem = ds["memory_per_gpu"]
    cap = ds["memory_capacity_per_gpu"] if "memory_capacity_per_gpu" in ds.variables else None
    for dim in ("tp", "pp"):
        if dim not in mem.dims:
            mem = mem.expand_dims(dim) if dim not in ds.coords else mem.expand_dims({dim: [ds[dim].item()]})
            if cap is not None:
                cap = cap.expand_dims({dim: mem[dim].values})
    panels = _points(mem, ("tp", "pp"), "memory", MAX_PANELS)
    if len(panels) > 1 and len({d for c, _ in panels for d in c}) > 1:
        dims = list(dict.fromkeys(d for c, _ in panels for d in c))
        raise SpecError(
            f"plot memory: one panel per value of one dimension, but {', '.join(dims)} vary; "
            "select with --sel DIM=VALUE"
        )
    fig = _figure(figsize=(4.2 * len(panels) + 1, 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    vmax = float(np.nanmax(mem.values)) / 1e9
    image = None
    for ax, (coords, grid) in zip(axes, panels):
        grid = grid.transpose("pp", "tp")
        gb = grid.values / 1e9
        image = ax.imshow(gb, origin="lower", cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        over = np.zeros_like(gb, dtype=bool)
        if cap is not None:
            c = cap.sel({k: v for k, v in coords.items() if k in cap.dims})
            c = c.broadcast_like(grid).transpose("pp", "tp").values
            over = grid.values > c
        for i in range(gb.shape[0]):
            for j in range(gb.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{gb[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if gb[i, j] < 0.6 * vmax else "black",
                )
                if over[i, j]:
                    from matplotlib.patches import Rectangle

                    ax.add_patch(
                        Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="red", linewidth=0)
                    )
        ax.set_xticks(range(grid.sizes["tp"]), [str(v) for v in grid["tp"].values.tolist()])
        ax.set_yticks(range(grid.sizes["pp"]), [str(v) for v in grid["pp"].values.tolist()])
        ax.set_xlabel("tp")
        ax.set_ylabel("pp")
        ax.set_title(_label(coords) if coords else "memory per GPU")
    fig.colorbar(image, ax=list(axes), label="memory per GPU (GB); hatched: over usable capacity")
    fig.savefig(path)
    return path


def sensitivity(ds: xr.Dataset, path: str | Path) -> Path:
    """Tornado chart of a sensitivity Dataset: % change of the metric for -10% and +10% of each
    parameter (elasticity x 10%), largest effect on top; over several points, the median
    elasticity of the feasible ones."""
    path = check_path(path)
    _need(ds, "sensitivity", "elasticity")
    el = ds["elasticity"]
    other = [d for d in el.dims if d != "param"]
    note = ""
    if other and int(np.prod([el.sizes[d] for d in other])) > 1:
        if "feasible" in ds.variables:
            el = el.where(ds["feasible"].astype(bool))
        el = el.median(other, skipna=True)
        note = " (median over the feasible points)"
    elif other:
        el = el.squeeze(other, drop=True)
    params = [str(p) for p in ds["param"].values]
    e = np.asarray(el.transpose("param").values, dtype=float)
    order = np.argsort(np.abs(np.nan_to_num(e)))  # smallest first: barh draws bottom-up
    fig = _figure(figsize=(7, 0.5 * len(params) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(params))
    step = 100 * TORNADO_STEP
    ax.barh(pos, e[order] * step, color="tab:red", label=f"+{step:.0f}% parameter")
    ax.barh(pos, -e[order] * step, color="tab:blue", label=f"-{step:.0f}% parameter")
    ax.set_yticks(pos, [f"{params[i]} (e={e[i]:+.2f})" for i in order])
    ax.axvline(0, color="black", linewidth=0.8)
    of = ds.attrs.get("of", "metric")
    ax.set_xlabel(f"change of {of} (%)")
    ax.set_title(f"Sensitivity of {of}{note}")
    ax.legend(fontsize="small")
    fig.savefig(path)
    return path


KINDS = {"pareto": pareto, "breakdown": breakdown, "memory": memory, "sensitivity": sensitivity}
