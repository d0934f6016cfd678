"""Parameter files: a graph's parameters as JSON, exact for float32 and float64.

The format mirrors the ``nn.ModuleDict`` of :func:`create_empty_parameters`::

    {
     "format": "grafx-core.parameters",
     "version": 1,
     "dtype": "float32",
     "parameters": {
      "dsp:gain": {"gain_db": [[-3.5], [1.25]]},
      "dsp:eq": {"low": {"gain_db": [[2.0]], ...}, ...}
     }
    }

Each node type maps to its (possibly nested) parameters; a leaf is the
tensor as nested lists, one row per node of that type in id order (row ``k``
belongs to ``graph.nodes_of_type(t)[k]``). An automation curve is a leaf with
one more, trailing axis of control frames; a file holding curves names their
rate with an optional ``"control_hop"`` (samples per control frame, see
:mod:`grafx_core.curves`), which :func:`load_control_hop` reads. JSON was chosen over
``torch.save`` because it is readable, diffable, language-neutral and loads
without unpickling; it is still exact: every float32 or float64 value is
written as the shortest decimal that reads back to the same bits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._jsonfile import read_json, write_text_atomically
from ._paths import TREES, leaves
from ._tree import ParameterModules, ParameterTree
from .curves import check_control_hop
from .errors import ParameterError

__all__ = ["PARAMETERS_FORMAT", "parameters_to_dict", "parameters_from_dict", "save_parameters",
           "load_parameters", "load_control_hop"]

PARAMETERS_FORMAT = "grafx-core.parameters"
PARAMETERS_FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_Tree = TREES
_KEYS = ("format", "version", "dtype", "parameters", "control_hop")


def _flat_values(value: Any) -> list[Any]:
    # A loop, not recursion: JSON nested hundreds deep must not raise RecursionError here.
    flat, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _is_numeric_list(value: Any) -> bool:
    # bool is an int to Python and a NaN-free 0/1 to torch: a silent wrong value in a parameter file.
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in _flat_values(value))


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaves(tree: Any) -> list[tuple[str, torch.Tensor]]:
    out = []
    for path, value in leaves(tree):
        if not isinstance(value, torch.Tensor):
            raise ParameterError(f"parameter {'.'.join(path)} must be a tensor, got {type(value).__name__}")
        out.append((".".join(path), value))
    return out


def parameters_to_dict(parameters: Any, *, control_hop: int | None = None) -> dict[str, Any]:
    """A JSON-ready dict of ``parameters`` (see the module docstring for the format).

    Args:
        parameters: ``{node_type: {name: tensor or nested dict}}``, e.g. the
            ``nn.ModuleDict`` of :func:`create_empty_parameters`; tensors on
            any device, all float32 or all float64.
        control_hop: samples per control frame of the curves among them
            (written as ``"control_hop"``; ``None`` writes none).

    Raises:
        ParameterError: a leaf is not a tensor, dtypes are mixed or not
            float32/float64, or a value is NaN or infinite; ``control_hop``
            is not a positive int.
    """
    if not isinstance(parameters, _Tree):
        raise ParameterError(f"parameters to save must be a mapping from node type to that type's parameters "
                             f"(as from create_empty_parameters), got {type(parameters).__name__}")
    leaves = _leaves(parameters)
    dtypes = {str(t.dtype).removeprefix("torch.") for _, t in leaves}
    if len(dtypes) > 1 or not dtypes <= set(_DTYPES):
        raise ParameterError(
            f"parameters to save must be all float32 or all float64, got {sorted(dtypes)} "
            f"({', '.join(f'{p}: {t.dtype}' for p, t in leaves)})"
        )
    for path, tensor in leaves:
        if not torch.isfinite(tensor).all():
            raise ParameterError(f"parameter {path} has NaN or infinite values; a parameter file holds finite values")

    def tree(node: Any) -> dict[str, Any]:
        return {key: tree(node[key]) if isinstance(node[key], _Tree) else node[key].detach().cpu().tolist()
                for key in node.keys()}

    document = {
        "format": PARAMETERS_FORMAT,
        "version": PARAMETERS_FORMAT_VERSION,
        "dtype": dtypes.pop() if dtypes else "float32",
        "parameters": tree(parameters),
    }
    if control_hop is not None:
        document["control_hop"] = _checked_hop(control_hop)
    return document


def _checked_hop(hop: Any) -> int:
    try:
        return check_control_hop(hop)  # type: ignore[return-value]
    except ValueError as exc:
        raise ParameterError(f"parameter file: {exc}") from None


def parameters_from_dict(data: Mapping[str, Any], *, device: torch.device | str | None = None) -> nn.ModuleDict:
    """Rebuild parameters from :func:`parameters_to_dict`'s output.

    Returns:
        An ``nn.ModuleDict`` of ``nn.ParameterDict``s of trainable parameters
        in the file's dtype, on ``device``.

    Raises:
        ParameterError: the dict is not a grafx-core parameter document of a
            known version, or a leaf is not a rectangular list of numbers.
    """
    if not isinstance(data, Mapping) or data.get("format") != PARAMETERS_FORMAT:
        raise ParameterError(f"not a grafx-core parameter file: expected a JSON object with format {PARAMETERS_FORMAT!r}")
    version = data.get("version")
    if type(version) is not int or version != PARAMETERS_FORMAT_VERSION:
        raise ParameterError(
            f"parameter file version {version!r} is not supported "
            f"(this grafx-core reads version {PARAMETERS_FORMAT_VERSION})"
        )
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise ParameterError(f"parameter file has unknown key(s) {unknown}; expected keys {list(_KEYS)}")
    dtype_name = data.get("dtype")
    if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
        raise ParameterError(f"parameter file dtype {dtype_name!r} is not one of {sorted(_DTYPES)}")
    dtype = _DTYPES[dtype_name]
    if data.get("control_hop") is not None:
        _checked_hop(data["control_hop"])
    types = data.get("parameters")
    if not isinstance(types, Mapping):
        raise ParameterError("parameter file has no 'parameters' object (node type -> parameters)")

    def build(node: Mapping[str, Any], path: str) -> nn.ParameterDict:
        result = ParameterTree()
        for key, value in node.items():
            if isinstance(value, Mapping):
                result[key] = build(value, f"{path}.{key}")
                continue
            if not _is_numeric_list(value):
                raise ParameterError(f"parameter {path}.{key} must be a list of numbers (one row per node), "
                                     f"got {_preview(value)}")
            try:
                tensor = torch.tensor(value, dtype=dtype, device=device)
            except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
                raise ParameterError(f"parameter {path}.{key} is not a rectangular list of {dtype_name} "
                                     f"numbers: {exc}") from exc
            if not bool(torch.isfinite(tensor).all()):
                flat = tensor.reshape(-1)
                bad = int((~torch.isfinite(flat)).nonzero()[0, 0])
                raise ParameterError(f"parameter {path}.{key} holds {float(flat[bad])} (element {bad}, "
                                     f"from {_preview(_flat_values(value)[bad])}); values must be finite {dtype_name} numbers")
            result[key] = nn.Parameter(tensor)
        return result

    result = ParameterModules()
    for node_type, params in types.items():
        if not isinstance(params, Mapping):
            raise ParameterError(f"parameters of node type {node_type!r} must be a JSON object, got {params!r}")
        result[node_type] = build(params, node_type)
    return result


def save_parameters(parameters: Any, path: str | os.PathLike[str], *, control_hop: int | None = None) -> None:
    """Write ``parameters`` to ``path`` as JSON; :func:`load_parameters` reads them back bit for bit.

    ``control_hop`` records the rate of the automation curves among them
    (:func:`load_control_hop` reads it back).

    Raises:
        ParameterError: as :func:`parameters_to_dict`, or the file cannot be written.

    The file is written to a temporary file in the same folder and renamed
    over ``path``, so a concurrent reader sees the old file or the new one,
    never a partial one.
    """
    document = parameters_to_dict(parameters, control_hop=control_hop)
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    write_text_atomically(path, text, "parameter file", ParameterError)


def load_parameters(path: str | os.PathLike[str], *, device: torch.device | str | None = None) -> nn.ModuleDict:
    """Read a parameter file written by :func:`save_parameters`.

    Check them against a graph with :func:`check_parameters` (rendering does).

    Raises:
        ParameterError: the file is missing, not JSON, or not a parameter file.
    """
    name = os.fspath(path)
    data = read_json(name, "parameter file", ParameterError)
    try:
        return parameters_from_dict(data, device=device)
    except ParameterError as exc:
        raise ParameterError(f"{name!r}: {exc}") from exc


def load_control_hop(path: str | os.PathLike[str]) -> int | None:
    """The ``"control_hop"`` of a parameter file (samples per control frame of its curves), or ``None``.

    Raises:
        ParameterError: the file is missing, not JSON, not a parameter file,
            or its ``control_hop`` is not a positive int.
    """
    name = os.fspath(path)
    data = read_json(name, "parameter file", ParameterError)
    if not isinstance(data, Mapping) or data.get("format") != PARAMETERS_FORMAT:
        raise ParameterError(f"{name!r}: not a grafx-core parameter file")
    hop = data.get("control_hop")
    try:
        return None if hop is None else _checked_hop(hop)
    except ParameterError as exc:
        raise ParameterError(f"{name!r}: {exc}") from None
