"""Readable, unique processor names for plug-in URIs (``lsp_compressor_stereo``, ``x42_fil4_stereo``).

A name is the vendor's short name, then the URI's last path segment and its
fragment, in snake case. Only the URI is used, so a name never depends on
reading the plug-in's data, and it is the same on every machine with the same
plug-ins installed. Two URIs that would share a name (never among the Debian
packages) get ``_2``, ``_3``, ... in URI order; the URI itself is always
accepted too.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

__all__ = ["VENDORS", "plugin_names"]

VENDORS = {
    "lsp-plug.in": "lsp",
    "gareus.org": "x42",
    "x42-plugins.com": "x42",
    "calf.sourceforge.net": "calf",
    "distrho.sf.net": "dpf",
    "www.niallmoody.com": "ndc",
    "lv2plug.in": "lv2",
}
"""URI host → vendor prefix; other hosts use their second-level label (``example`` for ``fx.example.org``)."""


def _snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _name(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    host = parsed.netloc.lower()
    labels = [label for label in host.split(".") if label and label != "www"]
    vendor = VENDORS.get(host) or (labels[-2] if len(labels) >= 2 else labels[0] if labels else parsed.scheme)
    segments = [s for s in parsed.path.split("/") if s]
    parts = [segments[-1] if segments else "", parsed.fragment]
    body = "_".join(p for p in (_snake(part) for part in parts) if p) or "plugin"
    return f"{_snake(vendor)}_{body}"


def plugin_names(uris: Iterable[str]) -> dict[str, str]:
    """Name → URI for every URI (sorted first, so the suffixes of clashing names are stable)."""
    names: dict[str, str] = {}
    for uri in sorted(set(uris)):
        base = _name(uri)
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names[name] = uri
    return names
