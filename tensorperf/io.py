"""Saving and loading result Datasets by file extension (.nc, .csv, .json)."""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from .validation import SpecError

FORMATS = (".nc", ".csv", ".json")


def save(ds: xr.Dataset, path: str | Path) -> None:
    path = Path(path)
    if path.suffix == ".nc":
        ds.to_netcdf(path)
    elif path.suffix == ".csv":
        scalar = [v for v in ds.data_vars if "op" not in ds[v].dims]
        ds[scalar].to_dataframe().to_csv(path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(ds.to_dict(data="list"), default=str))
    else:
        raise SpecError(f"output {str(path)!r}: unknown extension {path.suffix!r}; allowed: {', '.join(FORMATS)}")
