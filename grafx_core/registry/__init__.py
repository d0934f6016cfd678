"""The plugin registry: processors and estimators that plugins register, by name.

Plugins publish a module with :data:`grafx_core.hookimpl` functions under the
entry-point group ``grafx_core``; nothing is imported until the first call
below. Names are qualified as ``"plugin:name"``; a short name works while only
one plugin offers it.
"""

from ._default import (
    default_registry,
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
    set_default_registry,
)
from ._discovery import ENTRY_POINT_GROUP, ENV_ALLOW, ENV_DISABLE_AUTOLOAD, ENV_STRICT
from ._manager import CORE_PLUGIN_NAME, DEFAULT_PLUGINS, Registry
from ._records import ConsoleInfo, EstimatorInfo, ExporterInfo, PluginFailure, PluginInfo, ProcessorInfo

__all__ = [
    "Registry",
    "default_registry",
    "set_default_registry",
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
    "ProcessorInfo",
    "ConsoleInfo",
    "ExporterInfo",
    "EstimatorInfo",
    "PluginInfo",
    "PluginFailure",
    "DEFAULT_PLUGINS",
    "CORE_PLUGIN_NAME",
    "ENTRY_POINT_GROUP",
    "ENV_STRICT",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_ALLOW",
]
