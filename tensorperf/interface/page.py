"""``tensorperf report`` / :func:`report`: one self-contained static HTML page of a sweep.

The page holds the sweep's axes and presets, the best configuration per group (hardware, and any other
dim that is not a layout or batch dim) under the stated limits, an interactive Pareto frontier of
tokens/s per GPU against tokens/s per user (one trace per group; hovering a point shows its layout,
dtype, batch, TTFT and cost), cost and energy views of the frontier points (when the sweep has those
variables), the per-op breakdown of a frontier point chosen from a dropdown (or by clicking it on the
frontier), and the reasons infeasible points failed, by count.

The figures are Plotly's (``pip install 'tensorperf[report]'``) with plotly.js embedded once, inline:
the file opens from disk in any browser with no server and no network. Every number on the page comes
from the existing reductions (``ds.tperf.best`` / ``ds.tperf.pareto_table``) and the Dataset's own
variables; nothing is evaluated again.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tensorperf.axes import LAYOUT_AXES
from tensorperf.engine.masks import Reason, describe
from tensorperf.interface import reductions
from tensorperf.interface.report import COLUMNS
from tensorperf.validation import SpecError
from tensorperf.version import __version__

Where = Mapping[str, tuple[str, float]]

# Cost and energy variables shown when the sweep has them (the serving_ version of each when the
# frontier is of serving_ metrics): name -> short header (units come from the variable's attrs).
COST = {
    "cost_per_million_output_tokens": "cost per M output tokens",
    "cost_per_million_input_tokens": "cost per M input tokens",
}
ENERGY = {
    "energy_per_output_token": "energy per output token",
    "power_per_gpu": "power per GPU",
    "tokens_per_s_per_mw": "tokens/s per MW",
}
# the layout shown for every point (the value of a scalar coordinate when not swept), then the
# scheduling inputs shown only when swept
LAYOUT_SHOWN = ("tp", "cp", "pp", "dp", "ep")
LAYOUT_SWEPT_ONLY = tuple(d for d in LAYOUT_AXES if d not in (*LAYOUT_SHOWN, "batch"))
BOUND_COLORS = {0: "#9aa0a6", 1: "#3366cc", 2: "#ff9900", 3: "#109618"}
BOUND_NAMES = {0: "none", 1: "compute-bound", 2: "memory-bound", 3: "communication-bound"}
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00", "#b82e2e")
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #3366cc; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg);
       margin: 0; background: #fff; }
header { background: #24292f; color: #fff; padding: 20px 32px 16px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; }
header p { margin: 0; color: #c9d1d9; }
nav { position: sticky; top: 0; z-index: 10; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 32px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 48px; }
section { margin-top: 28px; }
h2 { font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-bottom: 10px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
p.note, p.absent { color: var(--muted); margin: 6px 0; }
p.absent { font-style: italic; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: var(--bg); font-weight: 600; white-space: normal; vertical-align: bottom; }
.scroll { overflow-x: auto; max-width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }
td.s, th.s { text-align: left; }
tr:nth-child(even) td { background: #fbfcfd; }
td.values { white-space: normal; text-align: left; max-width: 820px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; background: var(--bg); }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 13px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: var(--bg); padding: 8px; overflow-x: auto; font-size: 12px; }
code { background: var(--bg); padding: 0 4px; border-radius: 3px; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; border-top: 1px solid var(--line); padding-top: 8px; }
"""

# clicking a frontier point selects it in the breakdown (the dropdown's button of that point)
CLICK_SCRIPT = """
var gd = document.getElementById('{plot_id}');
gd.on('plotly_click', function (ev) {
  var i = ev.points[0].customdata, b = document.getElementById('breakdown');
  if (b === null || !b.layout || !b.layout.updatemenus || i === undefined) { return; }
  var btn = b.layout.updatemenus[0].buttons[i], layout = {'updatemenus[0].active': i};
  Object.assign(layout, btn.args[1]);
  Plotly.update(b, btn.args[0], layout, btn.args[2]);
});
"""


# --------------------------------------------------------------------------- small helpers


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise SpecError("the HTML report needs plotly: pip install 'tensorperf[report]'") from None
    return go


def _e(value: Any) -> str:
    return html.escape(str(value))


def _label(value: Any) -> str:
    """A coordinate label as text (integers without '.0')."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _num(x: Any) -> str:
    """A number of unknown scale, readably rounded ('-' for NaN)."""
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _units(ds: xr.Dataset, name: str) -> str:
    units = str(ds[name].attrs.get("units", "")) if name in ds.variables else ""
    return "" if units in ("", "1") else units


def _header(ds: xr.Dataset, name: str) -> str:
    if name in COLUMNS:
        return COLUMNS[name][0]
    base = name.removeprefix("serving_")
    short = {**COST, **ENERGY}.get(base, name)
    short = f"serving {short}" if name.startswith("serving_") and base in {**COST, **ENERGY} else short
    units = _units(ds, name)
    return f"{short} ({units})" if units else short


def _cell(name: str, value: Any) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str) or name not in COLUMNS:
        return _label(value) if not isinstance(value, (float, np.floating)) else _num(value)
    _, scale, fmt = COLUMNS[name]
    if fmt == "s":
        return _label(value)
    if fmt == "d":
        return f"{int(round(float(value) * scale)):d}"
    return format(float(value) * scale + 0.0, fmt)


def _axis_title(ds: xr.Dataset, name: str) -> str:
    long = str(ds[name].attrs.get("long_name", name))
    units = _units(ds, name)
    return f"{long} ({units})" if units else long


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], heads: Sequence[str], cls: str = "") -> str:
    """An HTML table; text columns left-aligned."""
    text = {c for c in columns if any(isinstance(r.get(c), str) for r in rows)}
    head = "".join(f'<th class="{"s" if c in text else ""}">{_e(h)}</th>' for c, h in zip(columns, heads))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"s" if c in text else ""}">{_e(_cell(c, r.get(c)))}</td>' for c in columns)
        + "</tr>"
        for r in rows
    )
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _values(ds: xr.Dataset, name: str) -> list[Any]:
    """The labels of a coordinate (one for a scalar), or [] when absent."""
    if name not in ds.coords:
        return []
    return [_label(v) for v in np.atleast_1d(ds[name].values)]


def _where_text(where: Where | None) -> str:
    if not where:
        return "no limits stated: every feasible point"
    return " and ".join(
        f"{name} {cmp} {float(value):g}"
        for name, cond in where.items()
        for cmp, value in (cond if isinstance(cond[0], (tuple, list)) else (cond,))  # a range: two conditions
    )


def _figure_html(fig: Any, div_id: str, post_script: str | None = None) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG, post_script=post_script)


def check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise SpecError(f"file {str(path)!r}: the report is an HTML page; give a path ending in .html")
    if not path.parent.is_dir():
        raise SpecError(f"file {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    return path


# --------------------------------------------------------------------------- what the sweep is


def title_of(ds: xr.Dataset) -> str:
    """'MODEL(S) on HARDWARE · prompt P, output O tokens' from the sweep's coordinates."""
    models = ", ".join(_values(ds, "model")) or "model"
    hardware = ", ".join(_values(ds, "hardware")) or "hardware"
    work = []
    for name, what in (("prompt_len", "prompt"), ("output_len", "output")):
        values = _values(ds, name)
        if values:
            work.append(f"{what} {'/'.join(values)}")
    return f"{models} on {hardware}" + (f" · {', '.join(work)} tokens" if work else "")


def _summary(ds: xr.Dataset, x: str, y: str, where: Where | None) -> str:
    dims = [d for d in ds[x].dims] + [d for d in ds[y].dims if d not in ds[x].dims]
    size = int(np.prod([ds.sizes[d] for d in dims])) if dims else 1
    feasible = int(ds["feasible"].broadcast_like(ds[x]).sum()) if "feasible" in ds.data_vars else size
    cards = [
        (f"{size:,}", "configurations"),
        (f"{feasible:,}", "feasible"),
        (str(len(dims)), "swept dimensions"),
        (str(ds.attrs.get("convention", "?")), "convention"),
    ]
    out = ['<div class="cards">']
    out += [f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards]
    out.append("</div>")
    out.append(f'<p class="note">Limits stated for the best configurations: {_e(_where_text(where))}.</p>')

    rows = []
    for d in ds.dims:
        if d == "op":
            continue
        coords = [c for c in ds.coords if ds[c].dims == (d,)]
        values = "; ".join(f"{c}: " + ", ".join(_label(v) for v in ds[c].values) for c in coords) or (
            f"{ds.sizes[d]} positions"
        )
        rows.append({"dim": d, "size": ds.sizes[d], "values": values})
    out.append('<div class="row"><div><h3>Swept dimensions</h3>')
    out.append(_table(rows, ["dim", "size", "values"], ["dimension", "size", "values"]))
    scalars = [{"name": c, "value": _label(ds[c].values.item())} for c in ds.coords if ds[c].ndim == 0]
    if scalars:
        out.append("</div><div><h3>Fixed inputs</h3>")
        out.append(_table(scalars, ["name", "value"], ["input", "value"]))
    out.append("</div></div>")
    out.append(_presets(ds))
    return "\n".join(out)


def _presets(ds: xr.Dataset) -> str:
    out = []
    models = _specs(ds, "model_specs")
    if models:
        rows = [
            {
                "name": name,
                "layers": s.get("num_layers"),
                "d_model": s.get("d_model"),
                "heads": f"{s.get('num_heads')}/{s.get('num_kv_heads')}",
                "experts": f"{s.get('experts_per_token')} of {s.get('num_experts')}"
                if s.get("num_experts")
                else "dense",
                "vocab": s.get("vocab_size"),
            }
            for name, s in models.items()
        ]
        out.append("<h3>Models</h3>")
        out.append(
            _table(
                rows,
                ["name", "layers", "d_model", "heads", "experts", "vocab"],
                ["model", "layers", "d_model", "heads (q/kv)", "experts (active of)", "vocab"],
            )
        )
    hardware = _specs(ds, "hardware_specs")
    if hardware:
        rows = [
            {
                "name": name,
                "bf16": s.get("peak_flops_bf16", math.nan) / 1e12,
                "fp8": (s.get("peak_flops_fp8") or math.nan) / 1e12,
                "fp4": (s.get("peak_flops_fp4") or math.nan) / 1e12,
                "hbm": s.get("hbm_bandwidth", math.nan) / 1e12,
                "cap": s.get("hbm_capacity", math.nan) / 1e9,
                "scaleup": s.get("scaleup_size"),
                "link": s.get("scaleup_bandwidth", math.nan) / 1e9,
                "power": float(s.get("board_power") or math.nan),
                "price": float(s.get("price_per_gpu_hour") or math.nan),
            }
            for name, s in hardware.items()
        ]
        cols = {
            "name": "hardware",
            "bf16": "bf16 TFLOP/s",
            "fp8": "fp8 TFLOP/s",
            "fp4": "fp4 TFLOP/s",
            "hbm": "HBM TB/s",
            "cap": "HBM GB",
            "scaleup": "scale-up GPUs",
            "link": "scale-up GB/s",
            "power": "board power W",
            "price": "$ per GPU-hour",
        }
        if all(math.isnan(r[c]) for r in rows for c in ("power", "price")):  # specs without power and price
            del cols["power"], cols["price"]
        out.append("<h3>Hardware</h3>")
        out.append(_table(rows, list(cols), list(cols.values())))
    specs = {"models": models, "hardware": hardware}
    if models or hardware:
        text = json.dumps(specs, indent=1, default=str)
        out.append(f"<details><summary>Full specifications (JSON)</summary><pre>{_e(text)}</pre></details>")
    return "\n".join(out)


def _specs(ds: xr.Dataset, key: str) -> dict[str, dict]:
    raw = ds.attrs.get(key)
    if not raw:
        return {}
    try:
        specs = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return {}
    return {str(k): v for k, v in specs.items() if isinstance(v, dict)}


# --------------------------------------------------------------------------- points and their labels


def _scalar(ds: xr.Dataset, name: str) -> Any:
    return ds[name].values.item() if name in ds.coords and ds[name].ndim == 0 else None


def _get(row: Mapping[str, Any], ds: xr.Dataset, name: str) -> Any:
    value = row.get(name)
    return _scalar(ds, name) if value is None else value


def _layout_text(row: Mapping[str, Any], ds: xr.Dataset) -> str:
    """'tp=8 pp=1 dp=8 ep=8' (and any swept scheduling input) of a point."""
    parts = []
    for d in LAYOUT_SHOWN:
        value = _get(row, ds, d)
        if value is not None and not (d == "cp" and d not in row and _label(value) == "1"):
            parts.append(f"{d}={_label(value)}")
    parts += [f"{d}={_label(row[d])}" for d in LAYOUT_SWEPT_ONLY if d in row]
    return " ".join(parts)


def _point_text(row: Mapping[str, Any], ds: xr.Dataset) -> str:
    """A point's layout, dtype and batch: 'tp=8 pp=1 dp=8 ep=8 · fp8 · batch 128'."""
    parts = [_layout_text(row, ds)]
    dtype = _get(row, ds, "weight_dtype")
    kv = _get(row, ds, "kv_dtype")
    if dtype is not None:
        parts.append(f"{dtype} weights" + (f", {kv} KV" if kv is not None and kv != dtype else ""))
    batch = _get(row, ds, "batch")
    if batch is not None:
        text = f"batch {_label(batch)}"
        if str(batch) == "max" and row.get("concurrency") is not None:
            text += f" ({_label(row['concurrency'])})"
        parts.append(text)
    return " · ".join(parts)


def _positions(ds: xr.Dataset, row: Mapping[str, Any], dims: Sequence[str]) -> dict[str, int] | None:
    """The position of a table row's point on each of ``dims`` (by the coordinates on that dim)."""
    out = {}
    for d in dims:
        coords = [c for c in ds.coords if ds[c].dims == (d,) and c in row]
        if not coords:
            if ds.sizes[d] != 1:
                return None
            out[d] = 0
            continue
        ok = np.ones(ds.sizes[d], dtype=bool)
        for c in coords:
            ok &= np.asarray(ds[c].values).astype(str) == str(row[c])
        hits = np.flatnonzero(ok)
        if not len(hits):
            return None
        out[d] = int(hits[0])
    return out


def _groups(frame: pd.DataFrame, kept: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    if not kept:
        return [("all", frame)]
    out = []
    for key, part in frame.groupby(list(kept), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((" · ".join(_label(k) for k in key), part))
    return out


# --------------------------------------------------------------------------- sections


def _cost_energy_names(ds: xr.Dataset, serving: bool) -> dict[str, str]:
    """base name -> the variable of the sweep shown for it (serving_ when the frontier is of serving_
    metrics and the sweep has it)."""
    out = {}
    for base in (*COST, *ENERGY):
        name = f"serving_{base}" if serving and f"serving_{base}" in ds.data_vars else base
        if name in ds.data_vars:
            out[base] = name
    return out


def _concurrency(ds: xr.Dataset) -> list[str]:
    """['concurrency'] where the batch is 'max' (else it is the batch)."""
    return ["concurrency"] if "batch" in ds.coords and ds["batch"].dtype.kind in "OUS" else []


def _money(shown: Mapping[str, str]) -> list[str]:
    """The cost and energy variables worth a column (cost per output token, energy per token)."""
    return [shown[b] for b in ("cost_per_million_output_tokens", "energy_per_output_token") if b in shown]


def _winners(res: xr.Dataset) -> pd.DataFrame:
    """The rows of a best() result, its ``best_<dim>`` columns under the dims' own names."""
    if res.sizes:
        frame = res.to_dataframe().reset_index()
    else:
        frame = pd.DataFrame([{name: res[name].values.item() for name in res.data_vars}])
    return frame.rename(columns={c: c.removeprefix("best_") for c in frame.columns if c.startswith("best_")})


def _best_section(
    ds: xr.Dataset, y: str, x: str, where: Where | None, keep: Sequence[str], shown: Mapping[str, str]
) -> str:
    frame = _winners(reductions.best(ds, y, where=where, keep=keep))
    layout = [d for d in (*LAYOUT_SHOWN, *LAYOUT_SWEPT_ONLY, "batch") if d in frame.columns]
    metrics = [y, x] + [
        v
        for v in ("ttft", "tpot", "memory_per_gpu", *_concurrency(ds), *_money(shown))
        if v in frame.columns and v not in (x, y)
    ]
    cols = [*keep, *layout, *metrics]
    rows = frame.to_dict("records")
    for r in rows:
        if not r.get("found", True):
            for c in (*layout, *metrics):
                r[c] = None
    out = [
        f'<p class="note">The configuration with the most <b>{_e(_header(ds, y))}</b> per '
        f"{_e(' x '.join(keep) or 'sweep')} under the stated limits ({_e(_where_text(where))}); "
        "'-': no configuration qualifies.</p>",
        _table(rows, cols, [_header(ds, c) for c in cols]),
    ]
    cost = shown.get("cost_per_million_output_tokens")
    if cost is not None and set(ds[cost].dims) <= set(ds[y].dims):
        frame = _winners(reductions.best(ds, cost, where=where, keep=keep, maximize=False))
        metrics = [cost, y, x] + [v for v in ("ttft",) if v in frame.columns]
        cols = [*keep, *layout, *metrics]
        out.append("<h3>Cheapest per output token under the same limits</h3>")
        out.append(_table(frame.to_dict("records"), cols, [_header(ds, c) for c in cols]))
    return "\n".join(out)


def _frontier_figure(go: Any, ds: xr.Dataset, groups: list[tuple[str, pd.DataFrame]], x: str, y: str) -> Any:
    fig = go.Figure()
    for k, (name, part) in enumerate(groups):
        fig.add_trace(
            go.Scatter(
                x=part[x].tolist(),
                y=part[y].tolist(),
                mode="lines+markers",
                name=name,
                text=part["hover"].tolist(),
                customdata=part["index"].tolist(),
                hovertemplate="%{text}<extra>%{fullData.name}</extra>",
                marker={"size": 9, "color": PALETTE[k % len(PALETTE)], "line": {"width": 1, "color": "#fff"}},
                line={"width": 1.5, "dash": "dot", "color": PALETTE[k % len(PALETTE)]},
            )
        )
    fig.update_xaxes(**_log(p[x] for _, p in groups))
    fig.update_yaxes(**_log(p[y] for _, p in groups))
    fig.update_layout(
        template="plotly_white",
        height=520,
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
        hovermode="closest",
        xaxis_title=_axis_title(ds, x),
        yaxis_title=_axis_title(ds, y),
        legend_title_text="",
    )
    return fig


def _log(parts: Any) -> dict[str, str]:
    """{'type': 'log'} for an axis whose positive values span more than a factor of 30."""
    values = np.concatenate([np.asarray(p, dtype=float) for p in parts] or [np.array([])])
    values = values[np.isfinite(values) & (values > 0)]
    return {"type": "log"} if len(values) and values.max() / values.min() > 30 else {}


def _cost_section(
    go: Any, ds: xr.Dataset, groups: list[tuple[str, pd.DataFrame]], x: str, shown: Mapping[str, str]
) -> str:
    """Cost and energy of the frontier points against ``x``: one panel per variable the sweep has."""
    from plotly.subplots import make_subplots

    metrics = [shown[b] for b in (*COST, "energy_per_output_token", "tokens_per_s_per_mw") if b in shown]
    out = []
    if metrics:
        cols = min(2, len(metrics))
        rows = -(-len(metrics) // cols)
        fig = make_subplots(
            rows=rows,
            cols=cols,
            subplot_titles=[f"{_header(ds, m)} on the frontier" for m in metrics],
            horizontal_spacing=0.1,
            vertical_spacing=0.16 if rows > 1 else 0.1,
        )
        for n, metric in enumerate(metrics):
            row, col = n // cols + 1, n % cols + 1
            for k, (name, part) in enumerate(groups):
                fig.add_trace(
                    go.Scatter(
                        x=part[x].tolist(),
                        y=part[metric].tolist(),
                        mode="markers",
                        name=name,
                        legendgroup=name,
                        showlegend=n == 0,
                        text=part["hover"].tolist(),
                        hovertemplate="%{text}<extra>%{fullData.name}</extra>",
                        marker={"size": 9, "color": PALETTE[k % len(PALETTE)]},
                    ),
                    row=row,
                    col=col,
                )
            fig.update_xaxes(title_text=_axis_title(ds, x), row=row, col=col, **_log(p[x] for _, p in groups))
            fig.update_yaxes(title_text=_header(ds, metric), row=row, col=col, **_log(p[metric] for _, p in groups))
        fig.update_layout(
            template="plotly_white",
            height=430 * rows,
            margin={"l": 70, "r": 20, "t": 50, "b": 60},
            hovermode="closest",
        )
        fig.update_annotations(font_size=14)
        out.append('<p class="note">The frontier points of the plot above (hover for their layout).</p>')
        out.append(_figure_html(fig, "cost-energy"))
    missing = [b for b in (*COST, *ENERGY) if b not in shown]
    if missing:
        out.append(f'<p class="absent">Not in this sweep: {_e(", ".join(missing))}.</p>')
    return "\n".join(out)


def _breakdown_section(go: Any, ds: xr.Dataset, frame: pd.DataFrame, x: str, y: str) -> str:
    names = [n for n in ("prefill_op_time", "decode_op_time") if n in ds.data_vars]
    if len(names) < 2 or not len(frame):
        what = "no frontier point" if len(names) == 2 else "the per-op breakdown (prefill_op_time, decode_op_time)"
        return f'<p class="absent">Not in this sweep: {what}.</p>'
    from plotly.subplots import make_subplots

    dims = [d for d in ds["decode_op_time"].dims if d != "op"]
    ops = [str(o) for o in ds["op"].values]
    points = []
    for _, row in frame.iterrows():
        pos = _positions(ds, row.to_dict(), dims)
        if pos is None:
            continue
        phases = []
        for name, scale, unit in (("prefill_op_time", 1.0, "s"), ("decode_op_time", 1e3, "ms")):
            values = np.asarray(ds[name].isel(pos).transpose("op").values, dtype=float) * scale
            bound_name = name.replace("_time", "_bound")
            bounds = (
                np.asarray(ds[bound_name].isel(pos).transpose("op").values).astype(int)
                if bound_name in ds.data_vars
                else np.zeros(len(ops), dtype=int)
            )
            text = [f"{op}: {_num(v)} {unit} ({BOUND_NAMES.get(b, '?')})" for op, v, b in zip(ops, values, bounds)]
            colors = [BOUND_COLORS.get(b, "#9aa0a6") for b in bounds]
            phases.append(([float(f"{v:.6g}") for v in values], colors, text, float(np.nansum(values))))
        label = f"{row['group']} · {_point_text(row.to_dict(), ds)} · {_num(row[x])} {_header(ds, x)}"
        title = f"<b>{label}</b><br>prefill {_num(phases[0][3])} s · one decode step {_num(phases[1][3])} ms"
        points.append((label, title, phases))
    if not points:
        return '<p class="absent">Not in this sweep: the frontier points could not be located.</p>'

    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=("prefill of one microbatch, all layers (s)", "one decode step, all layers (ms)"),
    )
    first = points[0][2]
    for col, (values, colors, text, _) in enumerate(first, start=1):
        fig.add_trace(
            go.Bar(
                x=values,
                y=ops,
                orientation="h",
                marker={"color": colors},
                text=text,
                textposition="none",
                hovertemplate="%{text}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    for b in (1, 2, 3):  # legend of the colours
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"symbol": "square", "size": 12, "color": BOUND_COLORS[b]},
                name=BOUND_NAMES[b],
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [
                {
                    "x": [phases[0][0], phases[1][0]],
                    "marker.color": [phases[0][1], phases[1][1]],
                    "text": [phases[0][2], phases[1][2]],
                },
                {"title.text": title},
                [0, 1],
            ],
        }
        for label, title, phases in points
    ]
    fig.update_layout(
        template="plotly_white",
        height=max(420, 28 * len(ops) + 200),
        margin={"l": 120, "r": 20, "t": 150, "b": 40},
        title={"text": points[0][1], "x": 0, "xanchor": "left", "y": 0.97, "font": {"size": 14}},
        updatemenus=[
            {
                "buttons": buttons,
                "active": 0,
                "direction": "down",
                "x": 0,
                "xanchor": "left",
                "y": 1.2,
                "yanchor": "top",
                "showactive": True,
                "bgcolor": "#f6f8fa",
            }
        ],
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.2, "yanchor": "top"},
        bargap=0.25,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    intro = (
        f'<p class="note">Choose one of the {len(points)} frontier points from the menu (or click a point on the '
        "frontier): the time of each operation, coloured by what bounds it.</p>"
    )
    return intro + _figure_html(fig, "breakdown")


def _infeasible_section(ds: xr.Dataset, x: str, where: Where | None) -> str:
    if "infeasible_reason" not in ds.data_vars:
        return '<p class="absent">Not in this sweep: infeasible_reason.</p>'
    code = ds["infeasible_reason"].broadcast_like(ds[x]).astype(np.int64)
    total = int(code.size)
    split = "hardware" if "hardware" in code.dims and code.sizes["hardware"] > 1 else None
    labels = [_label(h) for h in ds["hardware"].values] if split else []

    def counts(mask: xr.DataArray) -> dict[str, Any]:
        row = {"all": int(mask.sum())}
        row["share"] = f"{100 * row['all'] / total:.1f}%" if total else "-"
        if split:
            per = mask.sum([d for d in mask.dims if d != split]).values
            row.update({h: int(v) for h, v in zip(labels, per)})
        return row

    rows = []
    for reason in Reason:
        hit = (code & int(reason)) != 0
        if bool(hit.any()):
            rows.append({"reason": describe(int(reason)), **counts(hit)})
    rows.sort(key=lambda r: -r["all"])
    feasible = code == 0
    rows.append({"reason": "feasible", **counts(feasible)})
    if where:
        outside = feasible & ~reductions.constraint_mask(ds, where).broadcast_like(code)
        rows.append({"reason": f"feasible, outside the limits ({_where_text(where)})", **counts(outside)})
    cols = ["reason", "all", "share", *labels]
    out = [
        f'<p class="note">Of {total:,} configurations; a point may fail for several reasons, so the reasons '
        "overlap. The columns after the share count the points of each hardware.</p>",
        _table(rows, cols, ["reason", "points", "share", *labels]),
    ]
    values, n = np.unique(code.values, return_counts=True)
    combos = sorted(
        ({"why": describe(int(v)), "code": int(v), "points": int(c)} for v, c in zip(values, n) if v),
        key=lambda r: -r["points"],
    )
    if combos:
        out.append("<details><summary>Combinations of reasons, by count</summary>")
        out.append(_table(combos, ["why", "code", "points"], ["reasons", "infeasible_reason", "points"]))
        out.append("</details>")
    return "\n".join(out)


# --------------------------------------------------------------------------- the page


def render(
    ds: xr.Dataset,
    *,
    where: Where | None = None,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    title: str | None = None,
) -> str:
    """The report page of ``ds`` as one HTML string (see :func:`report`)."""
    go = _plotly()
    from plotly import __version__ as plotly_version
    from plotly.offline import get_plotlyjs

    if not isinstance(ds, xr.Dataset):
        raise SpecError(f"ds = {ds!r} is not allowed: must be an xarray Dataset (a sweep's results)")
    for name in (x, y):
        if name not in ds.data_vars:
            raise SpecError(f"{name!r} is not a variable of the sweep; choose from {', '.join(ds.data_vars)}")
    where = dict(where) if where else None
    dims = [d for d in ds.dims if d in ds[x].dims or d in ds[y].dims]
    over = reductions.default_over(ds, dims) or dims  # no layout or batch dim swept: over everything
    keep = [d for d in dims if d not in over]
    shown = _cost_energy_names(ds, serving=x.startswith("serving_") or y.startswith("serving_"))
    extra = [
        v
        for v in ("ttft", "tpot", "memory_per_gpu", *_concurrency(ds), *shown.values())
        if v in ds.data_vars and v not in (x, y) and set(ds[v].dims) <= set(dims)
    ]
    frame = reductions.pareto_table(ds, x, y, over=over, where=where, extra=extra).reset_index(drop=True)
    frame["index"] = np.arange(len(frame))
    groups = _groups(frame, keep)
    frame["group"] = ""
    for name, part in groups:
        frame.loc[part.index, "group"] = name
    frame["hover"] = [_hover(r, ds, x, y, shown) for r in frame.to_dict("records")]
    groups = _groups(frame, keep)  # again, with the hover text

    heading = title or f"tensorperf report: {title_of(ds)}"
    sections = [
        ("sweep", "The sweep", _summary(ds, x, y, where)),
        ("best", "Best configurations", _best_section(ds, y, x, where, keep, shown)),
        ("frontier", "Frontier", _frontier_section(go, ds, frame, groups, x, y, where, keep)),
        ("cost", "Cost and energy", _cost_section(go, ds, groups, x, shown)),
        ("breakdown", "Per-op breakdown", _breakdown_section(go, ds, frame, x, y)),
        ("infeasible", "Infeasible points", _infeasible_section(ds, x, where)),
    ]
    nav = "".join(f'<a href="#sec-{key}">{_e(name)}</a>' for key, name, _ in sections)
    body = "\n".join(
        f'<section id="sec-{key}"><h2>{_e(name)}</h2>\n{content}\n</section>' for key, name, content in sections
    )
    sub = (
        f"{len(frame)} frontier points of {_e(_header(ds, y))} versus {_e(_header(ds, x))} · "
        f"tensorperf {_e(ds.attrs.get('tensorperf_version', __version__))}, {_e(ds.attrs.get('convention', ''))} "
        "convention"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(heading)}</title>
<style>{CSS}</style>
<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<header><h1>{_e(heading)}</h1><p>{sub}</p></header>
<nav>{nav}</nav>
<main>
{body}
<footer>Made by tensorperf {_e(__version__)} with plotly {_e(plotly_version)} (plotly.js embedded: this page
needs no server and no network). Every number is the model's (a roofline model of inference), not a
measurement.</footer>
</main>
</body>
</html>
"""


# how a cost or energy value reads in a hover label: base name -> words after the value and its unit
PHRASES = {
    "cost_per_million_output_tokens": "per M output tokens",
    "cost_per_million_input_tokens": "per M input tokens",
    "energy_per_output_token": "per output token",
    "power_per_gpu": "per GPU",
    "tokens_per_s_per_mw": "",
}


def _amount(ds: xr.Dataset, name: str, value: Any) -> str:
    """'$1.23 per M output tokens', '0.52 J per output token', '620 W per GPU'."""
    units = _units(ds, name)
    number = _num(value)
    text = f"${number}" if units == "$" else f"{number} {units}".strip()
    phrase = PHRASES.get(name.removeprefix("serving_"), "")
    return f"{text} {phrase}".strip()


def _hover(row: Mapping[str, Any], ds: xr.Dataset, x: str, y: str, shown: Mapping[str, str]) -> str:
    """A frontier point's hover label: layout, dtype and batch; the two axes; TTFT and TPOT; cost and
    energy (where the sweep has them)."""
    lines = [_point_text(row, ds)]
    lines.append(f"{_cell(y, row[y])} {_header(ds, y)} · {_cell(x, row[x])} {_header(ds, x)}")
    timing = []
    if "ttft" in row and "ttft" not in (x, y):
        timing.append(f"TTFT {_num(row['ttft'])} s")
    if "tpot" in row and "tpot" not in (x, y):
        timing.append(f"TPOT {_num(row['tpot'] * 1e3)} ms")
    lines += [" · ".join(timing)] if timing else []
    cost = [_amount(ds, shown[b], row[shown[b]]) for b in COST if b in shown and shown[b] in row]
    energy = [_amount(ds, shown[b], row[shown[b]]) for b in ENERGY if b in shown and shown[b] in row]
    lines += [" · ".join(part) for part in (cost, energy) if part]
    return "<br>".join(_e(line) for line in lines)


def _frontier_section(
    go: Any,
    ds: xr.Dataset,
    frame: pd.DataFrame,
    groups: list[tuple[str, pd.DataFrame]],
    x: str,
    y: str,
    where: Where | None,
    keep: Sequence[str],
) -> str:
    if not len(frame):
        return f'<p class="absent">No feasible configuration meets the limits ({_e(_where_text(where))}).</p>'
    fig = _frontier_figure(go, ds, groups, x, y)
    note = (
        f'<p class="note">The Pareto frontier over the layout and batch of {_e(" x ".join(keep) or "sweep")}: '
        f"{len(frame)} configurations no other beats on both axes"
        + (f", among those with {_e(_where_text(where))}" if where else "")
        + ". Hover a point for its layout; click it to show its per-op breakdown below.</p>"
    )
    cols = [
        "group",
        *[c for c in frame.columns if c in (*LAYOUT_SHOWN, *LAYOUT_SWEPT_ONLY, "batch")],
        y,
        x,
        *[c for c in frame.columns if c not in (x, y) and c in ds.data_vars],
    ]
    heads = ["group", *[_header(ds, c) for c in cols[1:]]]
    table = _table(frame.to_dict("records"), cols, heads)
    return (
        note
        + _figure_html(fig, "frontier", CLICK_SCRIPT)
        + f"<details><summary>The {len(frame)} frontier points as a table</summary>{table}</details>"
    )


def report(
    ds: xr.Dataset,
    path: str | Path,
    *,
    where: Where | None = None,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    title: str | None = None,
) -> Path:
    """Write the report page of a sweep's Dataset to ``path`` (an ``.html`` file) and return the path.

    One self-contained static HTML file (plotly.js inline; no server, no network at view time): the
    sweep's axes and presets, the best configuration per group of the non-layout dims (e.g. per
    hardware) by ``y`` under ``where`` (e.g. ``{"tokens_per_s_per_user": (">=", 20)}``), the Pareto
    frontier of ``y`` versus ``x`` (one trace per group; hover shows layout, dtype, batch, TTFT, cost),
    cost and energy of the frontier points when the sweep has those variables, the per-op breakdown
    of a frontier point (chosen from a menu or by clicking the point), and the counts of the reasons
    infeasible points failed. Needs plotly: ``pip install 'tensorperf[report]'``."""
    path = check_path(path)
    text = render(ds, where=where, x=x, y=y, title=title)
    path.write_text(text, encoding="utf-8")
    return path
