"""The Grid: named sweep axes turned into broadcastable tensors.

This is the one place where user inputs become tensors. A list-valued input becomes a dimension
(its own tensor axis, size 1 on every other axis); a scalar input becomes a scalar coordinate
(size 1 on every axis). Axis ``i`` of every tensor the engine computes is ``grid.dims[i]``;
result-only dimensions (``op``) trail after the grid's.

Categorical axes (``model``, ``hardware``, ``weight_dtype``, ``kv_dtype``) carry string
coordinates; their numbers come from :meth:`Grid.spec` (a spec whose every numeric field is a
tensor placed on the spec's axis) and :meth:`Grid.lookup` (a table indexed by the label).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tensorperf.axes import DIM_ORDER, EVAL_ORDER, ZIP_DIM  # noqa: F401  (EVAL_ORDER: for the engine)
from tensorperf.catalog.specs import numeric_fields, tensor_view
from tensorperf.validation import SpecError


@dataclass(frozen=True)
class Grid:
    """Ordered named axes. ``values[name]`` is the tuple of values of every input (dims and scalars).

    ``dims`` lists the inputs given as lists (dimensions), in DIM_ORDER; the rest are scalar coords.
    Inputs listed in ``zipped`` share one dimension, ``ZIP_DIM`` (``"point"``): their i-th values
    form the i-th point (a list of configurations rather than a Cartesian product); it comes first.
    ``labels[name]`` are the coordinate labels (strings for categorical inputs).
    """

    values: Mapping[str, tuple[Any, ...]]
    labels: Mapping[str, tuple[Any, ...]]
    dims: tuple[str, ...]
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")
    zipped: tuple[str, ...] = ()

    def dim_of(self, name: str) -> str | None:
        """The dimension an input lies on (None for a scalar input)."""
        if name in self.zipped:
            return ZIP_DIM
        return name if name in self.dims else None

    @classmethod
    def build(
        cls,
        inputs: Mapping[str, tuple[tuple[Any, ...], tuple[Any, ...], bool]],
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        zipped: tuple[str, ...] = (),
    ) -> Grid:
        """``inputs[name] = (values, labels, is_dim)``; dims are ordered by DIM_ORDER, the zipped
        inputs' shared dimension first."""
        order = {name: i for i, name in enumerate(DIM_ORDER)}
        dims = tuple(
            sorted(
                (n for n, (_, _, is_dim) in inputs.items() if is_dim and n not in zipped),
                key=lambda n: order.get(n, len(order)),
            )
        )
        return cls(
            values=MappingProxyType({n: v for n, (v, _, _) in inputs.items()}),
            labels=MappingProxyType({n: lab for n, (_, lab, _) in inputs.items()}),
            dims=((ZIP_DIM,) if zipped else ()) + dims,
            dtype=dtype,
            device=torch.device(device),
            zipped=tuple(zipped),
        )

    def in_order(self, order: Sequence[str]) -> tuple[Grid, tuple[int, ...]]:
        """The same grid with its dims in ``order`` (dims ``order`` omits first), and the permutation
        that takes a tensor computed on it back to this grid's axis order."""
        rank = {d: i for i, d in enumerate(order)}
        dims = tuple(sorted(self.dims, key=lambda d: rank.get(d, -1)))
        return dataclasses.replace(self, dims=dims), tuple(dims.index(d) for d in self.dims)

    def _length(self, dim: str) -> int:
        return len(self.values[self.zipped[0]]) if dim == ZIP_DIM else len(self.values[dim])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._length(d) for d in self.dims)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def _placed_shape(self, name: str, n: int) -> list[int]:
        dim = self.dim_of(name)
        if dim is not None:
            return [n if d == dim else 1 for d in self.dims]
        if n != 1:
            raise SpecError(f"{name} has {n} values but is not a dimension")
        return [1] * len(self.dims)

    def place(self, name: str, numbers: Sequence[float], dtype: torch.dtype | None = None) -> torch.Tensor:
        """Numbers aligned with the values of input ``name``, shaped to broadcast on the grid."""
        t = torch.as_tensor(np.asarray(numbers), dtype=dtype or self.dtype, device=self.device)
        return t.reshape(self._placed_shape(name, len(numbers)))

    def axis(self, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The numeric values of input ``name`` placed on the grid (int64 if dtype=torch.int64)."""
        return self.place(name, self.values[name], dtype)

    def lookup(self, name: str, table: Mapping[str, float], dtype: torch.dtype | None = None) -> torch.Tensor:
        """Map the labels of a categorical input through ``table`` (e.g. dtype name -> bytes)."""
        return self.place(name, [table[label] for label in self.values[name]], dtype)

    def spec(
        self, name: str, attr: str | Callable[[Any], Any] | None = None, int_dtype: torch.dtype | None = None
    ) -> Any:
        """Tensor view of the specs of input ``name`` (``model`` or ``hardware``).

        Every numeric/bool field of the spec class becomes a tensor placed on the ``name`` axis, in
        the grid's dtype, or in ``int_dtype`` for int/bool fields when given (exact counts).
        ``attr`` selects a nested spec (a field name such as ``"seed"``, or a function of the spec)
        instead.
        """
        specs = self.values[name]
        if attr is not None:
            specs = tuple(attr(s) if callable(attr) else getattr(s, attr) for s in specs)
        cls = type(specs[0])
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        numeric = numeric_fields(cls)
        exact = [f for f in numeric if int_dtype is not None and kinds[f] in ("int", "bool")]
        fields = {}
        for names, number, dtype in (([f for f in numeric if f not in exact], float, None), (exact, int, int_dtype)):
            if names:  # one table per dtype, one tensor per field as a view of it (a single copy to the device)
                rows = np.asarray([[number(getattr(s, f)) for s in specs] for f in names])
                table = torch.as_tensor(rows, dtype=dtype or self.dtype, device=self.device)
                fields.update(zip(names, table.reshape([len(names)] + self._placed_shape(name, len(specs))).unbind(0)))
        fields = {f: fields[f] for f in numeric}
        if attr is None:  # what-if inputs: a field's own value, or a factor on each preset's value
            for field in fields:
                exact = int_dtype is not None and kinds[field] in ("int", "bool")
                if field in self.values:
                    fields[field] = self.axis(field, int_dtype if exact else None)
                if f"{field}_scale" in self.values:
                    fields[field] = fields[field] * self.axis(f"{field}_scale")
        names = {f.name: getattr(specs[0], f.name) for f in dataclasses.fields(cls) if f.name not in fields}
        return tensor_view(cls, {**names, **fields})

    def coords(self) -> dict[str, Any]:
        """Coordinate labels: 1-D for dims, scalars for the rest."""
        out: dict[str, Any] = {}
        for n, lab in self.labels.items():
            dim = self.dim_of(n)
            out[n] = lab[0] if dim is None else list(lab) if dim == n else (dim, list(lab))
        return out

    def block(self, ranges: Mapping[str, tuple[int, int]]) -> Grid:
        """The sub-grid keeping positions ``start:stop`` of each dimension in ``ranges`` (a chunk of a
        streamed sweep); every input lying on a dimension, zipped ones included, is sliced with it."""
        values, labels = dict(self.values), dict(self.labels)
        for name in self.values:
            dim = self.dim_of(name)
            if dim in ranges:
                start, stop = ranges[dim]
                values[name], labels[name] = self.values[name][start:stop], self.labels[name][start:stop]
        return dataclasses.replace(self, values=MappingProxyType(values), labels=MappingProxyType(labels))
