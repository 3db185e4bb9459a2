"""Saving and loading result Datasets by file extension.

=========  =================================================================================
``.nc``    netCDF: the netCDF4 library when installed, else netCDF-3 through scipy (then
           64-bit integers are stored as 32-bit ones and strings as character arrays; both
           read back as they were written, apart from that integer width)
``.zarr``  a Zarr store (a directory; needs ``zarr``: ``pip install 'tensorperf[io]'``)
``.csv``   a tidy table: one row per grid point, one column per dimension and per variable
           without an ``op`` dimension (values only: no attrs, no per-op variables)
``.json``  ``Dataset.to_dict`` layout (``coords``, ``data_vars``, ``attrs``; each variable with
           ``dims``, ``attrs``, ``data`` and its ``dtype``); NaN is written as ``null``
=========  =================================================================================

Every format but ``.csv`` keeps the attributes (units, long names, the model and hardware specs
as JSON, the convention and the tensorperf version): ``load(save(ds))`` has the same variables,
coordinates and attrs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import tensorperf.interface.accessor  # noqa: F401  (registers Dataset.tperf on every Dataset load() returns)
from tensorperf.axes import DIM_ORDER, ZIP_DIM
from tensorperf.run.inputs import OVERRIDABLE
from tensorperf.validation import SpecError

FORMATS = (".nc", ".zarr", ".csv", ".json")


def check_path(path: str | Path) -> None:
    """Raise SpecError now if ``path`` has no known extension (before a long sweep, not after)."""
    _suffix(_path(path))


def _suffix(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise SpecError(f"file {str(path)!r}: unknown extension {path.suffix!r}; allowed: {', '.join(FORMATS)}")
    return path.suffix


def netcdf_engine() -> str:
    """``netcdf4`` when the netCDF4 library is installed, else ``scipy`` (netCDF-3)."""
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        try:
            import scipy  # noqa: F401
        except ImportError:
            raise SpecError("the .nc format needs netCDF4 or scipy: pip install 'tensorperf[io]'") from None
        return "scipy"
    return "netcdf4"


# Global attribute names that scipy's netCDF-3 writer stores as attributes of its own file object
# (``mode``, ``filename``, ...): written under an escaped name and restored by load().
_SCIPY_RESERVED = frozenset(
    {"fp", "filename", "use_mmap", "mode", "version_byte", "maskandscale", "dimensions", "variables"}
)
_ESCAPE = "tensorperf_attr_"


def _escape_attrs(attrs: dict) -> dict:
    return {(_ESCAPE + k if k in _SCIPY_RESERVED else k): v for k, v in attrs.items()}


def _unescape_attrs(attrs: dict) -> dict:
    return {(k.removeprefix(_ESCAPE) if k.startswith(_ESCAPE) else k): v for k, v in attrs.items()}


def _need_zarr() -> None:
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise SpecError("the .zarr format needs the zarr package: pip install 'tensorperf[io]'") from None


def _zarr_format() -> dict:
    """Zarr format 2 under zarr-python 3: its string arrays and consolidated metadata are specified
    (format 3 has neither yet) and every Zarr reader opens it."""
    import zarr

    return {"zarr_format": 2} if int(zarr.__version__.split(".")[0]) >= 3 else {}


def _plain_attrs(attrs: dict) -> dict:
    """Attributes every format can store: strings and numbers (others as their text)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)) or value is None:
            value = str(value)
        elif isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, default=str)
        out[key] = value
    return out


def _with_plain_attrs(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs = _plain_attrs(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = _plain_attrs(ds[name].attrs)
    return ds


def _json_data(values: np.ndarray) -> Any:
    if values.dtype.kind == "f":
        return np.where(np.isnan(values), None, values.astype(object)).tolist()
    if values.dtype.kind in "OSU":
        return values.astype(str).tolist()
    return values.tolist()


def _to_json(ds: xr.Dataset) -> dict:
    def var(v: xr.Variable) -> dict:
        return {
            "dims": list(v.dims),
            "attrs": dict(v.attrs),
            "data": _json_data(np.asarray(v.values)),
            "dtype": str(v.dtype),
        }

    return {
        "coords": {k: var(ds[k].variable) for k in ds.coords},
        "attrs": dict(ds.attrs),
        "dims": dict(ds.sizes),
        "data_vars": {k: var(ds[k].variable) for k in ds.data_vars},
    }


def _from_json(doc: Any) -> xr.Dataset:
    def table(value: Any, what: str) -> dict:
        if not isinstance(value, dict):
            raise SpecError(f"{what} = {_short(value)} is not allowed: must be a JSON object")
        return value

    def var(name: str, d: Any) -> tuple:
        d = table(d, f"variable {name!r}")
        dtype = np.dtype(d.get("dtype", "float64"))
        dims = d["dims"]
        if not (isinstance(dims, list) and all(isinstance(x, str) for x in dims)):
            raise SpecError(f"variable {name!r}: dims = {_short(dims)} is not allowed: must be a list of names")
        data = d["data"]
        if dtype.kind == "f":
            data = np.asarray(
                np.where(np.equal(np.asarray(data, dtype=object), None), np.nan, np.asarray(data, dtype=object)),
                dtype=dtype,
            )
        elif dtype.kind in "US":
            data = np.asarray(data, dtype=str)
        else:
            data = np.asarray(data, dtype=dtype)
        return (tuple(dims), data, table(d.get("attrs", {}), f"attrs of {name!r}"))

    doc = table(doc, "the document")
    try:
        coords = {k: var(k, v) for k, v in table(doc.get("coords", {}), "coords").items()}
        data_vars = {k: var(k, v) for k, v in table(doc["data_vars"], "data_vars").items()}
        return xr.Dataset(data_vars, coords=coords, attrs=table(doc.get("attrs", {}), "attrs"))
    except SpecError as e:
        raise SpecError(f"not a tensorperf/xarray JSON Dataset: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise SpecError(f"not a tensorperf/xarray JSON Dataset ({type(e).__name__}: {e})") from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise SpecError(
            f"path = {path!r} is not allowed: must be a file name (str or Path) ending in {', '.join(FORMATS)}"
        )
    return Path(path)


def save(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` in the format named by the extension of ``path`` (see the module docstring)."""
    path = _path(path)
    suffix = _suffix(path)
    try:
        _save(ds, path, suffix)
    except OSError as e:
        raise SpecError(f"{path}: cannot write it ({e.strerror or e})") from None


def _save(ds: xr.Dataset, path: Path, suffix: str) -> None:
    if suffix == ".nc":
        engine = netcdf_engine()
        plain = _with_plain_attrs(ds)
        if engine == "scipy":
            plain.attrs = _escape_attrs(plain.attrs)
        plain.to_netcdf(path, engine=engine)
    elif suffix == ".zarr":
        _need_zarr()
        if path.is_dir():
            shutil.rmtree(path)
        _with_plain_attrs(ds).to_zarr(path, mode="w", consolidated=True, **_zarr_format())
    elif suffix == ".csv":
        scalar = [v for v in ds.data_vars if "op" not in ds[v].dims]
        table = ds[scalar]
        if not table.sizes:  # a single point: one row
            table = table.expand_dims("point")
        table.to_dataframe().to_csv(path)
    else:
        path.write_text(json.dumps(_to_json(ds), default=str, allow_nan=False))


def load(path: str | Path) -> xr.Dataset:
    """Read a Dataset written by :func:`save` (into memory; ``.csv`` gives values without attrs)."""
    path = _path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise SpecError(f"file {str(path)!r} does not exist")
    ds = _load(path, suffix)
    if not ds.variables:
        raise SpecError(f"{path}: holds no variables (an empty or corrupt {suffix} file)")
    return ds


def _load(path: Path, suffix: str) -> xr.Dataset:
    try:
        if suffix == ".nc":
            ds = xr.load_dataset(path, engine=netcdf_engine())
            ds.attrs = _unescape_attrs(ds.attrs)
            return ds
        if suffix == ".zarr":
            _need_zarr()
            with xr.open_zarr(path) as ds:
                return ds.load()
        if suffix == ".csv":
            import pandas as pd

            return _from_csv(pd.read_csv(path))
        return _from_json(json.loads(path.read_text()))
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as e:
        # anything the readers raise on a corrupt file names the file
        raise SpecError(f"{path}: cannot read it as {suffix} ({type(e).__name__}: {e})") from None


def _from_csv(frame: Any) -> xr.Dataset:
    """A tidy table back to a Dataset: the columns named like sweep inputs are coordinates (a
    dimension where they take several values, a scalar coordinate where one), the rest variables."""
    inputs = [c for c in frame.columns if c in DIM_ORDER or c in OVERRIDABLE or c in (ZIP_DIM, "param")]
    scalars = {c: frame[c].iloc[0] for c in inputs if frame[c].nunique(dropna=False) == 1 and len(frame) > 1}
    dims = [c for c in inputs if c not in scalars]
    if inputs and frame.duplicated(subset=inputs).any():
        row = frame[frame.duplicated(subset=inputs)].iloc[0]
        raise SpecError(
            f"two rows have the same coordinates ({', '.join(f'{d}={row[d]!r}' for d in inputs)}); "
            "a results table has one row per grid point"
        )
    frame = frame.drop(columns=list(scalars))
    if not dims:
        ds = xr.Dataset.from_dataframe(frame)
    else:  # labels in the order they were written (from_dataframe sorts them)
        ds = xr.Dataset.from_dataframe(frame.set_index(dims))
        ds = ds.reindex({d: list(dict.fromkeys(frame[d])) for d in dims})
    return ds.assign_coords({k: v.item() if hasattr(v, "item") else v for k, v in scalars.items()})
