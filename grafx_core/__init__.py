"""grafx-core: differentiable audio processing graphs in PyTorch."""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    AmbiguousNameError,
    AudioFileError,
    BlackBoxError,
    BlackBoxTimeoutError,
    BlackBoxWorkerError,
    ConformanceError,
    EstimatorError,
    SignalGradientQualityError,
    GrafxError,
    GraphConnectionError,
    GraphCycleError,
    GraphError,
    InletChannelError,
    NameCollisionError,
    NondeterministicEffectError,
    NonFiniteLossError,
    OptionalDependencyError,
    ParameterError,
    PluginError,
    PluginWarning,
    PredictorError,
    ProcessorOutputError,
    SourceShapeError,
    StreamingError,
    UnknownNameError,
    UnknownNodeTypeError,
)
from .blackbox import BlackBoxProcessor, ParameterSpec, RayRunner
from .control import CONTROL_SCALES, Control
from .curves import curve_frames, curve_to_samples
from .description import ProcessorDescription, describe
from .drawing import draw_graph
from .estimators import (
    SPSA,
    Estimator,
    FiniteDifference,
    GradientWarning,
    NeuralProxy,
    NonDifferentiableParameterWarning,
    ProxyNetwork,
    StoppedSignalGradientWarning,
    WeakSignalGradientWarning,
    RoughSignalGradientWarning,
    StraightThrough,
    backward_pooling,
    load_proxy,
    save_proxy,
    train_proxy,
    with_estimator,
)
from .graph import BUILTIN_TYPES, Edge, Graph, Node, disjoint_union
from .hookspecs import hookimpl
from .native_code import NativeCodeError, allow_plugin_folders, allowed_plugin_folders, check_plugin_path
from .parameter_file import load_control_hop, load_parameters, save_parameters
from .parameters import check_parameters, concatenate_parameters, create_empty_parameters
from .plan import CPU_TILE_BYTES, NodeAux, RenderPlan, compile_render
from .excerpts import render_excerpt
from .state import detach_state
from .stream import stream_render
from .predictor import ParameterPredictor, PredictorTrainer, multi_resolution_stft_loss
from .processor import (
    GRADIENT_KINDS,
    ParameterRange,
    Processor,
    ProcessorLike,
    accepted_channels,
    inlet_names,
    outlet_names,
    parameter_ranges,
)
from .registry import (
    Registry,
    get_console,
    get_estimator,
    get_exporter,
    get_processor,
    list_consoles,
    list_estimators,
    list_exporters,
    list_plugins,
    list_processors,
    plugin_failures,
    processors_for_graph,
)
from .render import render
from .schedule import SCHEDULING_METHODS, Stage, render_order
from .specs import ConsoleSpec, EstimatorSpec, ExporterSpec, ProcessorSpec
from .structure import GATE_PARAMETER, Gated, gate_processors, gate_values, prune
from .audiofile import read_audio
from .wavfile import read_wav, write_wav

try:
    __version__ = version("grafx-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    # graphs
    "Graph",
    "Node",
    "Edge",
    "BUILTIN_TYPES",
    "disjoint_union",
    # rendering
    "render",
    "compile_render",
    "curve_frames",
    "curve_to_samples",
    "RenderPlan",
    "CPU_TILE_BYTES",
    "NodeAux",
    "render_order",
    "Stage",
    "SCHEDULING_METHODS",
    "create_empty_parameters",
    "check_parameters",
    "concatenate_parameters",
    # streaming
    "stream_render",
    "render_excerpt",
    "detach_state",
    # structure
    "Gated",
    "GATE_PARAMETER",
    "gate_processors",
    "gate_values",
    "prune",
    # processors and plugins
    "Processor",
    "ProcessorLike",
    "Control",
    "CONTROL_SCALES",
    "describe",
    "ProcessorDescription",
    "GRADIENT_KINDS",
    "inlet_names",
    "outlet_names",
    "accepted_channels",
    "ParameterRange",
    "parameter_ranges",
    "ProcessorSpec",
    "EstimatorSpec",
    "ConsoleSpec",
    "ExporterSpec",
    "hookimpl",
    # plugin registry
    "get_processor",
    "list_processors",
    "get_estimator",
    "list_estimators",
    "list_plugins",
    "plugin_failures",
    "processors_for_graph",
    "list_consoles",
    "get_console",
    "list_exporters",
    "get_exporter",
    "Registry",
    "allow_plugin_folders",
    "allowed_plugin_folders",
    "check_plugin_path",
    # black boxes and gradient estimators
    "BlackBoxProcessor",
    "ParameterSpec",
    "RayRunner",
    "with_estimator",
    "Estimator",
    "FiniteDifference",
    "SPSA",
    "StraightThrough",
    "NeuralProxy",
    "ProxyNetwork",
    "train_proxy",
    "save_proxy",
    "load_proxy",
    "GradientWarning",
    "NonDifferentiableParameterWarning",
    "StoppedSignalGradientWarning",
    "WeakSignalGradientWarning",
    "RoughSignalGradientWarning",
    "backward_pooling",
    # parameter predictors
    "ParameterPredictor",
    "PredictorTrainer",
    "multi_resolution_stft_loss",
    # files and drawings
    "save_parameters",
    "load_parameters",
    "read_audio",
    "load_control_hop",
    "read_wav",
    "write_wav",
    "draw_graph",
    # errors
    "GrafxError",
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
    "NonFiniteLossError",
    "PluginWarning",
    "ConformanceError",
    "EstimatorError",
    "SignalGradientQualityError",
    "BlackBoxError",
    "BlackBoxTimeoutError",
    "BlackBoxWorkerError",
    "NondeterministicEffectError",
    "NativeCodeError",
    "PredictorError",
    "AudioFileError",
    "OptionalDependencyError",
    "StreamingError",
]
