"""Exception classes raised by grafx-core.

Every error names what is at fault (node, processor, parameter or plugin) and
what was expected, so that a user can act on the message alone.
"""

from __future__ import annotations

__all__ = [
    "GrafxError",
    "AudioFileError",
    "OptionalDependencyError",
    "GraphError",
    "UnknownNodeTypeError",
    "GraphCycleError",
    "GraphConnectionError",
    "SourceShapeError",
    "InletChannelError",
    "ParameterError",
    "ProcessorOutputError",
    "PluginError",
    "NameCollisionError",
    "AmbiguousNameError",
    "UnknownNameError",
    "PluginWarning",
    "ConformanceError",
    "EstimatorError",
    "SignalGradientQualityError",
    "BlackBoxError",
    "BlackBoxTimeoutError",
    "BlackBoxWorkerError",
    "NondeterministicEffectError",
    "StreamingError",
]


class GrafxError(Exception):
    """Base class of every error grafx-core raises on purpose."""


class GraphError(GrafxError):
    """A graph is malformed: bad node reference, duplicate name, bad JSON."""


class UnknownNodeTypeError(GraphError):
    """A node's type has no processor and is not a built-in type."""


class GraphCycleError(GraphError):
    """The graph has a cycle or a self-loop; the message lists its nodes."""


class GraphConnectionError(GraphError):
    """An edge names an inlet or outlet its node does not have, or an inlet
    that needs an input has none."""


class SourceShapeError(GrafxError):
    """The source signals do not match the graph's ``"in"`` nodes or each other."""


class InletChannelError(GrafxError, ValueError):
    """A signal reaching an inlet has a channel count its processor does not
    accept (its ``inlet_channels`` declaration); the message names the nodes,
    the inlet, the count received and the counts accepted."""


class ParameterError(GrafxError):
    """A parameter is missing, unexpected or of the wrong shape."""


class ProcessorOutputError(GrafxError):
    """A processor returned the wrong number of outlets, a wrong shape or bad aux values."""


class OptionsFileError(GrafxError):
    """Processor options (a file, or a mapping given to ``processors_for_graph``) are missing, not JSON,
    not ``{node_type: {option: value}}``, or name an option a type's factory does not take."""


class PluginError(GrafxError):
    """A plugin failed to load or registered something invalid."""


class NameCollisionError(PluginError):
    """Two registrations claim the same qualified name."""


class AmbiguousNameError(PluginError, LookupError):
    """A short name matches processors or estimators of several plugins."""


class UnknownNameError(PluginError, LookupError):
    """No registered processor or estimator has this name."""


class PluginWarning(UserWarning):
    """A plugin failed to load or registered something invalid; the others still load.

    Set ``GRAFX_CORE_STRICT_PLUGINS=1`` to get a :class:`PluginError` instead.
    """


class ConformanceError(GrafxError, AssertionError):
    """A processor broke the processor protocol in :func:`grafx_core.testing.check_processor`.

    Attributes:
        check: the name of the check that failed (``"batch-consistency"``, ...).
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"[{check}] {message}")
        self.check = check


class EstimatorError(GrafxError):
    """A gradient estimator was misconfigured or cannot treat a processor."""


class SignalGradientQualityError(EstimatorError):
    """No stand-in for an input signal's gradient scored well enough, and the estimator was asked to be
    strict about it (``strict_signal_gradient=True``)."""


class BlackBoxError(GrafxError):
    """A black-box effect raised, or returned NaN/Inf, complex or non-numeric
    samples or a wrong shape; or its input was not finite (an upstream fault)."""


class BlackBoxTimeoutError(BlackBoxError, TimeoutError):
    """A black-box effect did not return within its processor's ``timeout``.

    Attributes:
        item: the index of the item that did not return, in the runner's call.
    """

    def __init__(self, message: str, item: int = -1) -> None:
        super().__init__(message)
        self.item = item


class NondeterministicEffectError(BlackBoxError):
    """Two renders of one item with the same parameters were not bit-identical.

    Raised at a black box's first forward call; the message names the
    processor and the peak difference, and suggests ``instances="per-item"``
    for an effect that keeps state from one call to the next.
    """


class BlackBoxWorkerError(BlackBoxError):
    """A worker process rendering a black box's items died, was lost with its node, or timed out.

    The message names the processor, the worker's node and process, and the
    items it held; the work was retried as often as the runner allows.
    """


class AudioFileError(GrafxError):
    """A WAV file cannot be read or written, or several sources disagree on
    sample rate, channel count or length (the message lists each file's value)."""


class OptionalDependencyError(GrafxError, ImportError):
    """A feature needs a package that is not installed; the message says how to install it."""


class PredictorError(GrafxError):
    """A parameter predictor was built for a graph it cannot serve, got misshapen audio,
    or was given a checkpoint that does not match it (the message names the node type,
    parameter or file)."""


NON_FINITE_HINT = (" (a parameter or a processor output is no longer finite; a lower learning rate usually "
                   "avoids it)")


class NonFiniteLossError(GrafxError, FloatingPointError):
    """A fit's or a trainer's loss became NaN or infinite; the message names the
    step and the optimiser, and no step was taken from it."""


class StreamingError(GrafxError):
    """A graph cannot be rendered block by block: a processor neither carries its
    state (``initial_state``/``forward_stateful``) nor declares ``memoryless``, a
    parameter is a curve the stream cannot slice yet, or the blocks are misshapen
    (the message names the processor, node type, parameter or block)."""
