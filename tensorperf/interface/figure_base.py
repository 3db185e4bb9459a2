"""The mechanics shared by the figures of :mod:`tensorperf.interface.plot`: a Figure on the Agg
canvas (no display), the output path's check and the save, the checks of the variables drawn, the
points of a slice, labels, colors and the title."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from tensorperf.axes import AXES, Kind
from tensorperf.interface import figure_text as text
from tensorperf.validation import SpecError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = (".png", ".svg", ".pdf")
PNG_DPI = 150
SHOWN_LAYOUT = ("batch", "tp", "cp", "pp", "dp", "ep")  # fixed layout dims a title names
ALWAYS_SHOWN = ("batch", "tp", "pp")  # the others only when not 1
LISTED = 12  # variable names an error lists; more are counted
CHARS_PER_INCH = 11  # of a title line at the "medium" font size


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib Figure on the Agg canvas (pyplot's global state untouched)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError("plotting needs matplotlib: pip install 'tensorperf[plot]'") from None
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)  # draws and saves without a display
    return fig


def check_path(path: str | Path) -> Path:
    """A figure's path: .png, .svg or .pdf."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise SpecError(
            f"figure {str(path)!r}: unknown extension {path.suffix!r}; allowed: {', '.join(FIGURE_FORMATS)}"
        )
    return path


def finish(fig: Figure, path: Path | None) -> Figure:
    """Save ``fig`` to ``path`` when given; return it."""
    if path is not None:
        fig.savefig(path, dpi=PNG_DPI)
    return fig


def need(ds: xr.Dataset, kind: str, *names: str) -> None:
    """An error naming the first of ``names`` that ``ds`` lacks."""
    for name in names:
        if name not in ds.variables:
            raise SpecError(
                f"plot {kind} needs the variable {name!r}, which these results lack "
                f"(they have: {', '.join(map(str, ds.data_vars)) or 'nothing'})"
            )


def numeric_variable(ds: xr.Dataset, role: str, name: Any) -> str:
    """A numeric data variable to draw on an axis, or an error naming it and the closest names."""
    numeric = [str(v) for v in ds.data_vars if ds[v].dtype.kind in "biuf"]
    if name in numeric:
        return name
    close = difflib.get_close_matches(str(name), numeric, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    what = "is not numeric" if name in ds.data_vars else "is not a variable of these results"
    listed = ", ".join(numeric) if len(numeric) <= LISTED else f"{len(numeric)} in all (ds.data_vars)"
    raise SpecError(f"plot pareto: {role} = {name!r} {what}.{hint} Numeric variables: {listed}")


def point_label(coords: Mapping[str, Any]) -> str:
    """A curve's or bar's label: names (model, hardware, formats) as they are, numbers as dim=value."""
    parts = []
    for dim, value in coords.items():
        named = dim in AXES and AXES[dim].kind in (Kind.SPEC, Kind.LABEL)
        parts.append(text.label_text(value) if named else f"{dim}={text.label_text(value)}")
    return " ".join(parts)


def fixed_layout(ds: xr.Dataset) -> list[str]:
    """The layout dims with one label here, for a title (tp, pp and batch always; others when not 1)."""
    out = []
    for dim in SHOWN_LAYOUT:
        if dim in ds.coords and ds[dim].size == 1:
            if dim in ALWAYS_SHOWN or text.label_text(ds[dim].values.reshape(-1)[0]) != "1":
                out.append(dim)
    return out


def set_title(fig: Figure, what: str, ds: xr.Dataset, **options: Any) -> None:
    """The figure's title (:func:`figure_text.title`), wrapped to the figure's width."""
    chars = int(fig.get_figwidth() * CHARS_PER_INCH)
    fig.suptitle(text.title(what, ds, width=chars, **options), fontsize="medium")


def points(da: xr.DataArray, keep: tuple[str, ...], kind: str, limit: int) -> list[tuple[dict, xr.DataArray]]:
    """(coords, slice) for every combination of the dims of ``da`` other than ``keep`` (the ``keep``
    dims stay dims, even of length 1)."""
    da = da.squeeze([d for d in da.dims if da.sizes[d] == 1 and d not in keep], drop=False)
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


def colors(n: int) -> list:
    """``n`` distinct colors: tab10 up to 10, else tab20 (repeating after 20)."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["tab20"](i % 20) for i in range(n)]
