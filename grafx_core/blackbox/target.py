"""A black-box processor as a render target for the estimators, and the map of its raw controls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import BlackBoxError, BlackBoxTimeoutError
from ..estimators.target import RenderJob, RenderTarget
from .lifecycle import check_bit_exact

if TYPE_CHECKING:
    from .processor import BlackBoxProcessor

__all__ = ["BlackBoxTarget"]


def _unit(raw: torch.Tensor) -> torch.Tensor:
    # In float64: a float32 sigmoid rounds the last bit differently for different numbers of rows, and a
    # node's control value must not depend on how many nodes share its stage.
    return torch.sigmoid(raw.to(torch.float64)).to(raw.dtype)


def _row_name(target: BlackBoxTarget, row: int) -> str:
    labels = target.labels
    return labels[row] if labels is not None and row < len(labels) else f"node row {row}"


class BlackBoxTarget(RenderTarget):
    """A black-box processor as a render target: all rows of all jobs in one run of its runner.

    Columns are the normalised controls (bounds 0 and 1); the effect sees each
    natural value rounded to float32. ``labels`` name the node rows in error
    messages (captured when the target is made, so backward renders name the
    nodes of their own forward call).
    """

    lower, upper = 0.0, 1.0

    def __init__(self, processor: BlackBoxProcessor, labels: Sequence[str] | None = None) -> None:
        self.processor = processor
        self.labels = labels
        self.name = f"black box {processor.name!r}"
        self.columns = tuple(s.name for s in processor.specs)
        self.differentiable = tuple(s.differentiable for s in processor.specs)
        self.concurrent = getattr(processor, "concurrent_calls", False) is True

    def keyword_parameters(self, params: torch.Tensor) -> dict[str, Any]:
        return {s.name: s.to_natural(params[:, j]) for j, s in enumerate(self.processor.specs)}

    def _natural(self, params: torch.Tensor) -> torch.Tensor:
        p = params.to(torch.float64)
        cols = [s.to_natural(p[:, j]) for j, s in enumerate(self.processor.specs)]
        natural = torch.stack(cols, dim=1) if cols else p
        return natural.to(torch.float32).to(torch.float64)

    def quantise(self, params: torch.Tensor) -> torch.Tensor:
        natural = self._natural(params)
        cols = [s.to_normalised(natural[:, j]) for j, s in enumerate(self.processor.specs)]
        return torch.stack(cols, dim=1) if cols else params.to(torch.float64)

    def distance(self, params: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``|p - r|`` in normalised units (each control's range is ``[0, 1]``)."""
        return (params.to(torch.float64) - reference.to(torch.float64)).abs()

    def random_rows(self, params: torch.Tensor, rng: Any) -> torch.Tensor:
        """Differentiable controls uniform in the middle 80% of their normalised range; the others as given."""
        rows = params.to(torch.float64).clone()
        for j, diff in enumerate(self.differentiable):
            if diff:
                rows[:, j] = torch.from_numpy(rng.uniform(0.1, 0.9, size=rows.shape[0]))
        return rows

    def step_floor(self, params: torch.Tensor) -> torch.Tensor:
        cols = [s.step_floor(params[:, j]) for j, s in enumerate(self.processor.specs)]
        return torch.stack(cols, dim=1) if cols else torch.zeros_like(params, dtype=torch.float64)

    def render(self, jobs: Sequence[RenderJob]) -> list[torch.Tensor]:
        proc = self.processor
        arrays: dict[int, np.ndarray] = {}
        inputs, naturals, indices, outputs = [], [], [], []
        for job in jobs:
            x = job.signals[0]
            key = id(x)
            if key not in arrays:
                arrays[key] = self._read_only_copy(x, job)
            inputs.append(arrays[key])
            naturals.append(self._natural(job.params).cpu().numpy())
            indices.append(None if job.index is None else job.index.cpu().numpy())
            channels = proc.output_channels or x.shape[1]
            outputs.append(np.empty((len(job), channels, x.shape[2]), dtype=np.float32))
        checked = self._first_forward_item(jobs)
        policy = proc.instances if proc.effect_factory is not None else None
        items, places = [], []
        for j, job in enumerate(jobs):
            for r in range(len(job)):
                row = r if indices[j] is None else int(indices[j][r])
                items.append((inputs[j][row], self._item_natural(naturals[j][r], row, job.params[r])))
                places.append((j, r))

        def accept(i: int, ys: Sequence[Any]) -> None:
            j, r = places[i]
            if len(ys) == 2:
                check_bit_exact(proc.name, ys[0], ys[1], policy)
            self._store(outputs[j], r, ys[-1], jobs[j], items[i][1])

        def failed(i: int, error: BaseException) -> BlackBoxError:
            j, r = places[i]
            return self._error(jobs[j], r, items[i][1], f"the effect raised {type(error).__name__}: {error}")

        try:
            proc.runner.run_items(proc, items, accept, failed, twice=checked)
        except BlackBoxTimeoutError as timeout:
            if timeout.item < 0:  # the runner could not tell which item, and named what it knows
                raise
            j, r = places[timeout.item]
            error = self._error(jobs[j], r, items[timeout.item][1], f"the effect did not return within the timeout of "
                                                                    f"{proc.runner.timeout:g} s", BlackBoxTimeoutError)
            raise error from None
        if checked is not None:
            proc._determinism_checked = True
        return [torch.from_numpy(out).to(device=job.signals[0].device, dtype=job.signals[0].dtype)
                for out, job in zip(outputs, jobs)]

    def _item_natural(self, natural: np.ndarray, row: int, params: torch.Tensor) -> dict[str, Any]:
        """The keyword values the effect gets for one item (``row``: its input's row)."""
        return {n: float(v) for n, v in zip(self.columns, natural)}

    def _first_forward_item(self, jobs: Sequence[RenderJob]) -> int | None:
        """The item the first-use check renders twice (the first forward row), or ``None``."""
        proc = self.processor
        if not proc.check_determinism or proc._determinism_checked:
            return None
        starts = np.cumsum([0] + [len(job) for job in jobs])
        return next((int(starts[j]) for j, job in enumerate(jobs) if job.purpose == "forward" and len(job)), None)

    def _read_only_copy(self, x: torch.Tensor, job: RenderJob) -> np.ndarray:
        """``x`` as float32 numpy on memory of its own, read-only: an effect writing through the
        array's data pointer changes only this copy, and its ``writeable`` flag cannot be set."""
        converted = x.detach().to("cpu", torch.float32).contiguous()
        array = converted.numpy()
        # Only forward inputs come from upstream; perturbed ones are this estimator's own, so
        # scanning them would cost a pass over every backward render for nothing.
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1) if job.purpose == "forward" else None
        if finite is not None and not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            labels = self.processor.node_labels
            where = labels[row] if labels is not None and row < len(labels) else f"node row {row}"
            error = BlackBoxError(f"{self.name}, {where}: its input signal holds NaN or Inf, so the fault is "
                                  "upstream (the processor or source feeding it), not in this effect")
            error.row = row
            raise error
        shared = x.device.type == "cpu" and converted.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        # A GPU, float64 or strided input was copied by the conversion already: one copy, not two.
        owned = array.copy() if shared else array
        owned.flags.writeable = False
        return owned.view()  # a view of a read-only array cannot be made writeable

    def _store(self, out: np.ndarray, r: int, y: Any, job: RenderJob, natural: dict[str, float]) -> None:
        expected = out.shape[1:]
        y = np.asarray(y)
        if y.dtype.kind != "f":
            raise self._error(job, r, natural, f"the effect returned {y.dtype} samples; expected real "
                                              "floating-point samples (float32)")
        if y.ndim == 1 and expected[0] == 1:
            y = y[None]
        if y.shape != expected:
            raise self._error(job, r, natural, f"the effect returned shape {y.shape}; expected {expected} "
                                              "([channels, samples], as long as its input)")
        out[r] = y
        if not np.isfinite(out[r]).all():
            raise self._error(job, r, natural, "the effect returned NaN or Inf")

    def _error(self, job: RenderJob, r: int, natural: dict[str, float], problem: str,
               kind: type[BlackBoxError] = BlackBoxError) -> BlackBoxError:
        node = int(job.nodes[r])
        labels = self.labels
        named = labels is not None and node < len(labels)
        where = labels[node] if named else f"node row {node}"
        values = ", ".join(f"{k}={v:.6g}" for k, v in natural.items()) or "no parameters"
        render = "" if job.purpose == "forward" else f" ({job.purpose} render)"
        error = kind(f"{self.name}, {where}{render}: {problem}; parameters {values}")
        if not named:
            error.row = node  # the render engine turns the row into the graph node's name
        return error
