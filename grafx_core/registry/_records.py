"""Frozen records the registry hands out: plugins, their failures and registrations."""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import ConsoleSpec, EstimatorSpec, ExporterSpec, ProcessorSpec

__all__ = ["PluginInfo", "PluginFailure", "ProcessorInfo", "EstimatorInfo", "ConsoleInfo", "ExporterInfo",
           "distribution_label"]


def distribution_label(distribution: str | None, version: str | None) -> str:
    """``"grafx-dsp 0.1.0"``, or ``"(no distribution)"`` for a plugin registered in memory."""
    if distribution is None:
        return "(no distribution)"
    return distribution if version is None else f"{distribution} {version}"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin.

    Attributes:
        name: the plugin name, i.e. the prefix of its qualified names
            (``"dsp"`` in ``"dsp:gain"``): the entry-point name, ``"core"`` for
            grafx-core's own defaults, or the name given to
            :meth:`Registry.register`.
        distribution: the installed distribution that provides it
            (``"grafx-dsp"``), ``None`` for an in-memory plugin.
        version: that distribution's version, or ``None``.
        origin: how it was found: ``"default"``, ``"entry point"`` or ``"in-memory"``.
        modules: the plugin objects' module names (several for ``"core"``).
    """

    name: str
    distribution: str | None
    version: str | None
    origin: str
    modules: tuple[str, ...] = ()

    @property
    def distribution_label(self) -> str:
        """``"distribution version"`` for listings."""
        return distribution_label(self.distribution, self.version)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load, or registered something invalid.

    Attributes:
        plugin: the plugin (entry-point) name.
        distribution: the distribution that provides it, if known.
        version: that distribution's version, if known.
        stage: where it failed: ``"import"``, ``"register"``, ``"hook"``,
            ``"collision"``, ``"allow-list"`` or ``"settings"`` (then ``plugin``
            names the environment variable at fault).
        message: what went wrong and what was expected.
    """

    plugin: str
    distribution: str | None
    version: str | None
    stage: str
    message: str

    def __str__(self) -> str:
        where = distribution_label(self.distribution, self.version)
        return f"grafx-core plugin {self.plugin!r} from {where} [{self.stage}]: {self.message}"


@dataclass(frozen=True)
class _Registration:
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def name(self) -> str:
        """The qualified name ``"plugin:short_name"``."""
        return f"{self.plugin}:{self.short_name}"

    @property
    def short_name(self) -> str:
        """The name the plugin gave, without the plugin prefix."""
        return self.spec.name  # type: ignore[attr-defined]

    @property
    def description(self) -> str:
        """The spec's one-line description."""
        return self.spec.description  # type: ignore[attr-defined]

    @property
    def distribution_label(self) -> str:
        """``"distribution version"`` for messages and listings."""
        return distribution_label(self.distribution, self.version)


@dataclass(frozen=True)
class ProcessorInfo(_Registration):
    """A registered processor: its spec and the plugin that offers it.

    ``name`` is the qualified name (``"dsp:gain"``), ``short_name`` the plugin's
    own (``"gain"``); ``gradient`` the kind of gradient the spec declares,
    ``signal_gradient`` how the input signal's gradient is obtained.
    """

    spec: ProcessorSpec

    @property
    def gradient(self) -> str:
        """How the processor's gradient is obtained (one of ``GRADIENT_KINDS``)."""
        return self.spec.gradient

    @property
    def signal_gradient(self) -> str:
        """How the input signal's gradient is obtained by default (``"auto"``: a probe at first use)."""
        return self.spec.signal_gradient


@dataclass(frozen=True)
class EstimatorInfo(_Registration):
    """A registered gradient estimator: its spec and the plugin that offers it."""

    spec: EstimatorSpec


@dataclass(frozen=True)
class ConsoleInfo(_Registration):
    """A registered mixing console (``grafx-core fit --console``): its spec and the plugin that offers it."""

    spec: ConsoleSpec


@dataclass(frozen=True)
class ExporterInfo(_Registration):
    """A registered exporter (``grafx-core export``): its spec and the plugin that offers it."""

    spec: ExporterSpec
