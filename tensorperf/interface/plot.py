"""Figures of a sweep's results (matplotlib; ``pip install 'tensorperf[plot]'``).

One function per kind, each taking a Dataset (a sweep's, or one read back with
:func:`tensorperf.interface.io.load`) and returning a matplotlib ``Figure`` (shown inline by a
notebook); given ``path`` (``.png``, ``.svg`` or ``.pdf``) it also saves the figure there:

- :func:`pareto`: the Pareto frontier of any two variables (default: output tokens/s per GPU versus
  tokens/s per user) over layouts and batches, one curve per combination of the other dims
  (hardware, dtype, ...), optionally among the points meeting ``where``.
- :func:`breakdown`: stacked per-op time of prefill and of one decode step, one bar per point.
- :func:`memory`: memory per GPU as a heatmap over tp x pp (hatched: over the usable capacity).
- :func:`sensitivity`: a tornado chart of a :func:`tensorperf.sensitivity` Dataset: the change of
  the metric for a +-10% change of each parameter (linearized: elasticity x 10%).

Titles name the model, hardware, workload and constraints; axes carry each variable's long name and
a readable unit (:mod:`tensorperf.interface.figure_text`). Uses matplotlib's object API (``Figure``
on the Agg canvas), never pyplot's global state, so nothing opens a window. ``ds.tperf.plot``
(:mod:`tensorperf.interface.accessor`) calls the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from tensorperf.interface import figure_base as base
from tensorperf.interface import figure_text as text
from tensorperf.interface.figure_base import FIGURE_FORMATS, check_path
from tensorperf.interface.reductions import default_over, pareto_table
from tensorperf.validation import SpecError, unknown_name_error

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURE_FORMATS", "KINDS", "breakdown", "check_path", "memory", "pareto", "select", "sensitivity"]

MAX_BARS = 24
MAX_PANELS = 8
TORNADO_STEP = 0.10  # the +-10% change of each parameter in the tornado chart
LEGEND_INSIDE = 8  # curves whose legend fits inside the axes; more go below them, in columns
LEGEND_COLUMNS = 4
LOG_SPAN = 100  # a frontier's time axis whose values span this factor or more is drawn log-scaled


def select(ds: xr.Dataset, assignments: Mapping[str, str]) -> xr.Dataset:
    """``ds.sel`` from text (``{"hardware": "b200", "tp": "8"}``), labels converted to each dim's type."""
    picks = {}
    for dim, value_text in assignments.items():
        if dim not in ds.dims:
            raise unknown_name_error("dimension in --sel", dim, ds.dims)
        labels = ds[dim].values
        value: Any = value_text
        if labels.dtype.kind in "iuf":
            try:
                value = float(value_text)
            except ValueError:
                raise SpecError(
                    f"--sel {dim}={value_text}: {dim} is numeric; choose one of {', '.join(map(str, labels.tolist()))}"
                ) from None
        if value not in labels.tolist():
            raise SpecError(
                f"--sel {dim}={value_text}: no such label; choose one of {', '.join(map(str, labels.tolist()))}"
            )
        picks[dim] = value
    return ds.sel(picks)


# --------------------------------------------------------------------------- pareto


def pareto(
    ds: xr.Dataset,
    path: str | Path | None = None,
    *,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    over: Any = None,
    where: Any = None,
    maximize: tuple[bool, bool] | None = None,
) -> Figure:
    """Frontier of ``y`` versus ``x`` (any two numeric variables) over the ``over`` dims (default:
    the layout and batch dims), one curve per combination of the other dims, among the feasible
    points meeting ``where`` (``{variable: (comparison, value)}``, SI units); see
    :func:`tensorperf.interface.reductions.pareto_table`. Saved to ``path`` when given."""
    path = base.check_path(path) if path is not None else None
    x, y = base.numeric_variable(ds, "x", x), base.numeric_variable(ds, "y", y)
    frame = pareto_table(ds, x, y, over=over, where=where, maximize=maximize)
    dims = [*ds[x].dims, *(d for d in ds[y].dims if d not in ds[x].dims)]
    over_dims = list(over) if over else default_over(ds, dims)
    kept = [c for c in frame.columns if c in dims and c not in over_dims and ds.sizes[c] > 1]
    groups = list(frame.groupby(kept, sort=False)) if kept else [((), frame)]
    rows = -(-len(groups) // LEGEND_COLUMNS) if len(groups) > LEGEND_INSIDE else 0  # legend rows below
    fig = base.new_figure(figsize=(8, 5.4 + 0.2 * rows), layout="constrained")
    ax = fig.add_subplot()
    ux, uy = text.readable(text.unit_of(ds, x), frame[x]), text.readable(text.unit_of(ds, y), frame[y])
    _curves(ax, groups, kept, (x, ux), (y, uy))
    if frame.empty:
        empty = "no feasible point meets the limits" if where else "no feasible point"
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([]), ax.set_yticks([])  # no scale without points
    ax.set_xlabel(text.axis_label(ds, x, ux, text.WIDE))
    ax.set_ylabel(text.axis_label(ds, y, uy))
    _log_axes(ax, *((frame[v].to_numpy(dtype=float), text.unit_of(ds, v)) for v in (x, y)))
    base.set_title(fig, f"Pareto frontier over {', '.join(over_dims)}", ds, where=where)
    if kept and not frame.empty:
        options = dict(title=", ".join(kept), fontsize="small", title_fontsize="small")
        if rows:
            fig.legend(loc="outside lower center", ncols=LEGEND_COLUMNS, **options)
        else:
            ax.legend(**options)
    return base.finish(fig, path)


def _log_axes(ax: Axes, xs: tuple[np.ndarray, str], ys: tuple[np.ndarray, str]) -> None:
    """Log-scale a time axis whose values span :data:`LOG_SPAN` or more (TTFT from ms to s), so that
    each decade is readable (throughput stays linear, as vendors draw it); then the grid."""
    for (values, unit), scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        if unit == "s" and values.size and values.min() > 0 and values.max() >= LOG_SPAN * values.min():
            scale("log")
    ax.grid(True, which="both" if "log" in (ax.get_xscale(), ax.get_yscale()) else "major", alpha=0.3)


def _curves(ax: Axes, groups: list, kept: list[str], x: tuple[str, text.Unit], y: tuple[str, text.Unit]) -> None:
    """One frontier curve per group: the color follows the first kept dim (e.g. hardware), the line
    style and marker the others (e.g. weight_dtype), so a curve's two labels read apart."""
    (xname, ux), (yname, uy) = x, y
    keys = [key if isinstance(key, tuple) else (key,) for key, _ in groups]
    firsts = list(dict.fromkeys(k[:1] for k in keys))
    rests = list(dict.fromkeys(k[1:] for k in keys))
    colors = base.colors(len(firsts))
    for key, (_, part) in zip(keys, groups):
        part = part.sort_values(xname)
        style = rests.index(key[1:])
        ax.plot(
            part[xname] * ux.factor,
            part[yname] * uy.factor,
            marker="osD^v<>ph*"[style % 10],
            linestyle=("-", "--", ":", "-.")[style % 4],
            markersize=4,
            color=colors[firsts.index(key[:1])],
            label=base.point_label(dict(zip(kept, key))),
        )


# --------------------------------------------------------------------------- breakdown


def breakdown(ds: xr.Dataset, path: str | Path | None = None) -> Figure:
    """Stacked per-op time of prefill and of one decode step, one bar per feasible point (at most
    24); the time unit (s, ms or µs) follows the largest bar. Saved to ``path`` when given."""
    path = base.check_path(path) if path is not None else None
    base.need(ds, "breakdown", "prefill_op_time", "decode_op_time")
    fig = base.new_figure(figsize=(11, 5.2), layout="constrained")
    ops = [str(o) for o in ds["op"].values]
    colors = base.colors(len(ops))
    axes = fig.subplots(1, 2)
    dropped: dict[str, None] = {}  # labels of the points with no time (infeasible), in order
    for ax, (name, panel) in zip(axes, (("prefill_op_time", "Prefill"), ("decode_op_time", "One decode step"))):
        every = base.points(ds[name], ("op",), "breakdown", MAX_BARS)
        points = [(c, p) for c, p in every if not np.isnan(p.values).all()]
        dropped.update((base.point_label(c) or "the point", None) for c, p in every if np.isnan(p.values).all())
        values = np.array([p.transpose("op").values for _, p in points]).reshape(len(points), len(ops))
        unit = text.readable("s", np.nansum(values, axis=1))
        values = np.nan_to_num(values) * unit.factor
        bottom = np.zeros(len(points))
        for j, op in enumerate(ops):
            if np.any(values[:, j] > 0):
                ax.bar(range(len(points)), values[:, j], bottom=bottom, label=op, color=colors[j])
                bottom += values[:, j]
        labels = [base.point_label(c) or str(ds["hardware"].values.reshape(-1)[0]) for c, _ in points]
        tilt = len(points) > 3
        ax.set_xticks(range(len(points)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        ax.tick_params(axis="x", labelsize="small")
        ax.set_title(panel)
        ax.set_ylabel(text.axis_label(ds, name, unit))
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylim(0, max(float(bottom.max(initial=0.0)), 1e-30) * 1.05)
        if not points:
            ax.text(0.5, 0.5, "no feasible point", ha="center", va="center", transform=ax.transAxes)
    handles, names = axes[0].get_legend_handles_labels()
    more = [(h, n) for h, n in zip(*axes[1].get_legend_handles_labels()) if n not in names]
    if handles or more:
        fig.legend(  # top of the stack first
            [*handles, *(h for h, _ in more)][::-1],
            [*names, *(n for _, n in more)][::-1],
            loc="outside right upper",
            title="operation",
            fontsize="small",
        )
    note = f"not drawn (infeasible): {', '.join(dropped)}" if dropped else ""
    base.set_title(fig, "Time per operation", ds, fixed=base.fixed_layout(ds), note=note)
    return base.finish(fig, path)


# --------------------------------------------------------------------------- memory


def _memory_panels(ds: xr.Dataset) -> tuple[list[tuple[dict, xr.DataArray]], xr.DataArray, xr.DataArray | None]:
    """(coords, tp x pp slice) per panel, the whole memory array and the capacity (or None)."""
    mem = ds["memory_per_gpu"]
    cap = ds["memory_capacity_per_gpu"] if "memory_capacity_per_gpu" in ds.variables else None
    for dim in ("tp", "pp"):
        if dim not in mem.dims:
            mem = mem.expand_dims(dim) if dim not in ds.coords else mem.expand_dims({dim: [ds[dim].item()]})
            if cap is not None:
                cap = cap.expand_dims({dim: mem[dim].values})
    panels = base.points(mem, ("tp", "pp"), "memory", MAX_PANELS)
    if len(panels) > 1 and len({d for c, _ in panels for d in c}) > 1:
        dims = list(dict.fromkeys(d for c, _ in panels for d in c))
        raise SpecError(
            f"plot memory: one panel per value of one dimension, but {', '.join(dims)} vary; "
            "select with --sel DIM=VALUE"
        )
    return panels, mem, cap


def memory(ds: xr.Dataset, path: str | Path | None = None) -> Figure:
    """Memory per GPU over tp x pp, one panel per point of at most one other dim; cells above the
    usable capacity are hatched. Saved to ``path`` when given."""
    from matplotlib.patches import Patch, Rectangle

    path = base.check_path(path) if path is not None else None
    base.need(ds, "memory", "memory_per_gpu")
    panels, mem, cap = _memory_panels(ds)
    unit = text.readable(text.unit_of(ds, "memory_per_gpu"), mem.values)
    vmax = float(np.nanmax(mem.values)) * unit.factor if np.isfinite(mem.values).any() else 1.0
    fig = base.new_figure(figsize=(4.2 * len(panels) + 2, 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    image = None
    for ax, (coords, grid) in zip(axes, panels):
        grid = grid.transpose("pp", "tp")
        shown = grid.values * unit.factor
        image = ax.imshow(shown, origin="lower", cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        over = np.zeros_like(shown, dtype=bool)
        if cap is not None:
            c = cap.sel({k: v for k, v in coords.items() if k in cap.dims})
            over = grid.values > c.broadcast_like(grid).transpose("pp", "tp").values
        for (i, j), v in np.ndenumerate(shown):
            color = "white" if not np.isfinite(v) or v < 0.6 * vmax else "black"
            shown_text = "-" if np.isnan(v) else f"{v:.0f}" if v >= 100 else f"{v:.3g}"
            ax.text(j, i, shown_text, ha="center", va="center", fontsize="small", color=color)
            if over[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="red", lw=0))
        ax.set_xticks(range(grid.sizes["tp"]), [text.label_text(v) for v in grid["tp"].values])
        ax.set_yticks(range(grid.sizes["pp"]), [text.label_text(v) for v in grid["pp"].values])
        ax.set_xlabel(f"tp: {text.long_name(ds, 'tp')}")
        ax.set_ylabel(f"pp: {text.long_name(ds, 'pp')}")
        if coords:
            ax.set_title(base.point_label(coords), fontsize="medium")
    fig.colorbar(image, ax=list(axes), label=text.axis_label(ds, "memory_per_gpu", unit))
    if cap is not None:
        hatch = Patch(fill=False, hatch="///", edgecolor="red", label="over the usable memory per GPU")
        fig.legend(handles=[hatch], loc="outside lower center", fontsize="small", frameon=False)
    base.set_title(fig, "Memory per GPU", ds, fixed=[d for d in base.fixed_layout(ds) if d not in ("tp", "pp")])
    return base.finish(fig, path)


# --------------------------------------------------------------------------- sensitivity


def sensitivity(ds: xr.Dataset, path: str | Path | None = None) -> Figure:
    """Tornado chart of a sensitivity Dataset: % change of the metric for -10% and +10% of each
    parameter (elasticity x 10%), largest effect on top; over several points, the median
    elasticity of the feasible ones. Saved to ``path`` when given."""
    path = base.check_path(path) if path is not None else None
    base.need(ds, "sensitivity", "elasticity")
    el = ds["elasticity"]
    other = [d for d in el.dims if d != "param"]
    note = ""
    if other and int(np.prod([el.sizes[d] for d in other])) > 1:
        if "feasible" in ds.variables:
            el = el.where(ds["feasible"].astype(bool))
        el = el.median(other, skipna=True)
        sizes = ", ".join(f"{d} {'/'.join(text.label_text(v) for v in ds[d].values)}" for d in other if d in ds.coords)
        note = f"median elasticity over the feasible points of {sizes}"
    elif other:
        el = el.squeeze(other, drop=True)
    params = [str(p) for p in ds["param"].values]
    e = np.asarray(el.transpose("param").values, dtype=float)
    order = np.argsort(np.abs(np.nan_to_num(e)))  # smallest first: barh draws bottom-up
    fig = base.new_figure(figsize=(8, 0.5 * len(params) + 2.4), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(params))
    step = 100 * TORNADO_STEP
    ax.barh(pos, e[order] * step, color="tab:red", label=f"parameter +{step:.0f}%")
    ax.barh(pos, -e[order] * step, color="tab:blue", label=f"parameter -{step:.0f}%")
    ax.set_yticks(pos, [f"{params[i]} (elasticity {round(e[i], 2) + 0.0:+.2f})" for i in order])  # no -0.00
    ax.axvline(0, color="black", linewidth=0.8)
    of = str(ds.attrs.get("of", "metric"))
    ax.set_xlabel(text.wrap(f"change of the {text.clause(text.long_name(ds, of))} (%)", text.WIDE))
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize="small")
    base.set_title(fig, f"Sensitivity of the {text.short_name(ds, of)}", ds, fixed=base.fixed_layout(ds), note=note)
    return base.finish(fig, path)


KINDS: Mapping[str, Callable[..., Figure]] = MappingProxyType(
    {"pareto": pareto, "breakdown": breakdown, "memory": memory, "sensitivity": sensitivity}
)
