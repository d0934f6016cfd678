"""List installed plugins: their processors (with gradient kind), estimators, descriptions and failures.

Plugins are found through the "grafx_core" entry-point group; the environment
variables GRAFX_CORE_PLUGINS, GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD and
GRAFX_CORE_STRICT_PLUGINS apply as everywhere else.
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

from ..errors import PluginWarning
from ._default import default_registry
from ._manager import Registry
from ._records import distribution_label

__all__ = ["add_arguments", "run", "plugins_report", "format_report"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--json``."""
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the plugins of the default registry."""
    report = plugins_report(default_registry())
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def plugins_report(registry: Registry) -> dict[str, Any]:
    """What ``grafx-core plugins --json`` prints: plugins with their registrations, and failures."""
    with warnings.catch_warnings():
        # The report lists the failures itself; a warning on top would say it twice.
        warnings.simplefilter("ignore", PluginWarning)
        plugins = registry.list_plugins()
        processors = registry.list_processors()
        estimators = registry.list_estimators()
        consoles, exporters = registry.list_consoles(), registry.list_exporters()
        failures = registry.plugin_failures()

    def owned(infos: list[Any], plugin: Any) -> list[Any]:
        return [i for i in infos if (i.plugin, i.distribution, i.version) == (plugin.name, plugin.distribution,
                                                                                plugin.version)]

    return {
        "plugins": [
            {
                "name": p.name,
                "distribution": p.distribution,
                "version": p.version,
                "origin": p.origin,
                "modules": list(p.modules),
                "processors": [{"name": i.name, "short_name": i.short_name, "gradient": i.gradient,
                                "signal": i.signal_gradient, "description": i.description} for i in owned(processors, p)],
                "estimators": [{"name": i.name, "short_name": i.short_name, "description": i.description}
                               for i in owned(estimators, p)],
                "consoles": [{"name": i.name, "short_name": i.short_name, "description": i.description}
                             for i in owned(consoles, p)],
                "exporters": [{"name": i.name, "short_name": i.short_name, "description": i.description}
                              for i in owned(exporters, p)],
            }
            for p in plugins
        ],
        "failures": [
            {"plugin": f.plugin, "distribution": f.distribution, "version": f.version, "stage": f.stage,
             "message": f.message}
            for f in failures
        ],
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`plugins_report`, one line per processor, estimator,
    console or exporter with its description; ``KIND`` is a processor's gradient kind,
    or ``estimator``, ``console`` (``fit --console``), ``exporter`` (``grafx-core export``)."""
    header = ("PLUGIN", "DISTRIBUTION", "NAME", "KIND", "DESCRIPTION")
    rows: list[tuple[str, ...]] = []
    for plugin in report["plugins"]:
        entries = [(p["short_name"], p["gradient"], p["description"]) for p in plugin["processors"]]
        entries += [(e["short_name"], "estimator", e["description"]) for e in plugin["estimators"]]
        entries += [(e["short_name"], kind, e["description"]) for kind in ("console", "exporter")
                    for e in plugin.get(f"{kind}s", [])]
        for k, (name, kind, description) in enumerate(entries or [("-", "", "")]):
            first = k == 0
            rows.append((
                plugin["name"] if first else "",
                distribution_label(plugin["distribution"], plugin["version"]) if first else "",
                name, kind, description,
            ))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    if not report["plugins"]:
        lines.append("(no plugins loaded)")
    if report["failures"]:
        lines += ["", f"{len(report['failures'])} plugin(s) failed:"]
        lines += [f"  {f['plugin']} ({distribution_label(f['distribution'], f['version'])}) "
                  f"[{f['stage']}]: {f['message']}" for f in report["failures"]]
    lines.append("")
    lines.append("Use a processor as 'plugin:name', or by its short name while only one plugin offers it.")
    return "\n".join(lines)
