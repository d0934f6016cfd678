"""A network that predicts every parameter of a graph from audio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import PredictorError
from ..graph import Graph
from .encoder import AudioEncoder
from .layout import HeadSpec, head_specs

__all__ = ["ParameterPredictor"]


class ParameterPredictor(nn.Module):
    """Predicts per-example parameters of every processor node of a graph from audio.

    One shared :class:`AudioEncoder` embeds each input signal (a recording, and
    for style transfer a reference); the embeddings are concatenated, pass a
    hidden layer, and one linear head per processor type and parameter gives
    that parameter for every node of the type. The result is a parameter tree
    ``{type: {name: [batch, nodes, *shape]}}`` that a :class:`~grafx_core.RenderPlan`
    of the same graph takes directly, each value in its processor's declared
    range (see :mod:`grafx_core.predictor.layout`); a fresh predictor outputs
    about the processors' defaults.

    The predictor holds no processor and no global state: it is an ordinary
    module (``state_dict``, ``.to(device)``, data-parallel wrappers), and the
    graph's processors, black boxes included, stay with the render plan. What
    the gradient through a black box is worth is up to its estimator.

    Args:
        graph: the graph whose parameters are predicted.
        processors: a processor for each node type of ``graph``.
        inputs: how many signals ``forward`` takes (2 for input and reference).
        channels: channels of each signal.
        sample_rate: of the signals, in Hz.
        hidden: size of the hidden layer before the heads.
        ranges: per node type, ranges replacing the declared ones
            (``{"compressor": {"ratio": ParameterRange(1, 8)}}``), see
            :func:`~grafx_core.predictor.head_specs`.
        encoder: a module mapping ``[batch, channels, samples]`` to
            ``[batch, embedding]`` with an ``embedding`` attribute (default:
            an :class:`AudioEncoder` built with ``encoder_options``).
        encoder_options: options of the default :class:`AudioEncoder`
            (``n_fft``, ``n_mels``, ``width``, ``layers``, ``embedding``).

    Attributes:
        specs: one :class:`HeadSpec` per head, in the order of ``heads``.

    Raises:
        UnknownNodeTypeError: a node type of ``graph`` has no processor.
        PredictorError: the graph has no parameter to predict, ``inputs`` is
            not positive, or a range is invalid or names no parameter.
    """

    def __init__(self, graph: Graph, processors: Mapping[str, Any], *, inputs: int = 1, channels: int = 1,
                 sample_rate: float = 44100.0, hidden: int = 256, ranges: Mapping[str, Mapping[str, Any]] | None = None,
                 encoder: nn.Module | None = None, **encoder_options: Any) -> None:
        super().__init__()
        if not isinstance(inputs, int) or inputs < 1:
            raise PredictorError(f"ParameterPredictor: inputs must be a positive int, got {inputs!r}")
        if encoder is not None and encoder_options:
            raise PredictorError(f"ParameterPredictor: encoder options {sorted(encoder_options)} given with an encoder")
        self.specs: list[HeadSpec] = head_specs(graph, processors, ranges)
        if not self.specs:
            raise PredictorError(f"ParameterPredictor: no processor of the graph's types {graph.processor_types()} "
                                 "has a parameter to predict")
        self.types = list(graph.processor_types())
        self.inputs = inputs
        self._graph = graph.to_dict()
        self.encoder = encoder if encoder is not None else AudioEncoder(channels, sample_rate, **encoder_options)
        self.trunk = nn.Sequential(nn.Linear(inputs * int(self.encoder.embedding), hidden), nn.GELU())
        self.heads = nn.ModuleList()
        for k, spec in enumerate(self.specs):
            head = nn.Linear(hidden, spec.size)
            with torch.no_grad():
                head.weight.mul_(0.1)  # start near the defaults, not at a random corner of each range
                head.bias.copy_(spec.initial_output())
            self.heads.append(head)
            self.register_buffer(f"_default_{k}", spec.default.float(), persistent=False)

    def forward(self, *audio: torch.Tensor) -> dict[str, Any]:
        """Predict the parameters for each example.

        Args:
            audio: ``inputs`` signals, each ``[batch, channels, samples]``
                (lengths may differ between signals).

        Returns:
            For every processor type of the graph, a nested dict of tensors
            ``[batch, nodes_of_type, *shape]`` (an empty dict for a type without
            parameters), in the dtype of the audio.

        Raises:
            PredictorError: the wrong number of signals, or signals whose batch
                sizes differ or that are not ``[batch, channels, samples]``.
        """
        if len(audio) != self.inputs:
            raise PredictorError(f"ParameterPredictor: expected {self.inputs} signal(s), got {len(audio)}")
        if any(a.dim() != 3 for a in audio) or len({a.shape[0] for a in audio}) != 1:
            raise PredictorError(
                f"ParameterPredictor: expected signals [batch, channels, samples] of one batch size, got "
                f"{[list(a.shape) for a in audio]}"
            )
        features = self.trunk(torch.cat([self.encoder(a) for a in audio], dim=-1))
        tree: dict[str, Any] = {t: {} for t in self.types}
        for k, (spec, head) in enumerate(zip(self.specs, self.heads)):
            value = spec.squash(head(features), getattr(self, f"_default_{k}")).to(audio[0].dtype)
            node = tree[spec.node_type]
            for key in spec.path[:-1]:
                node = node.setdefault(key, {})
            node[spec.path[-1]] = value
        return tree

    def built_for(self) -> dict[str, Any]:
        """What a checkpoint of this predictor was made for: its graph (nodes and edges) and every head's
        parameter, shape, range and scale, JSON-ready; :class:`~grafx_core.PredictorTrainer` refuses to resume
        a checkpoint whose description differs."""
        heads = [{"parameter": spec.name, "nodes": spec.nodes, "shape": list(spec.shape), "low": spec.low,
                  "high": spec.high, "scale": spec.scale} for spec in self.specs]
        return {"graph": {"nodes": self._graph["nodes"], "edges": self._graph["edges"]}, "inputs": self.inputs,
                "heads": heads}

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}, heads={[spec.name for spec in self.specs]}"
