"""What a fit did, in a mixing engineer's words, and what of the target it could not express.

:func:`describe_stems` reads each track's fader, pan, EQ and compressor of a
console built by :func:`~grafx_core.fitting.build_console` (nodes named
``<stem>_fader``, ``<stem>_eq``, ``<stem>_compressor``, and where present
``<stem>_highpass`` and the bells ``<stem>_bell2``, ...) and says what they
do: ``"fader -6.1 dB, 30% left; EQ +3.2 dB at 2.4 kHz, high shelf -2.0 dB
above 8 kHz; compressed about 3.5 dB on average (9.1 dB at peaks), 2.6:1
above -24 dBFS"``. The gain reduction is estimated from the stem's level in
10 ms frames through the compressor's static curve: about what a meter shows.

:func:`residual_report` measures what the fitted mix leaves out: per
third-octave band, the residual's level against the target's; the bands where
it is loudest; and the stems playing most in those bands, so that a mix the
console cannot express is said to be one, and where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..graph import Graph
from .initial import _band_centres, _band_powers

__all__ = ["describe_stems", "residual_report"]

_EQ_MOVE_DB = 0.5  # smaller EQ moves are not worth a word
_FRAME_S = 0.01
_ACTIVE_DB = -60.0  # frames quieter than this are silence, not compression


def _hz(value: float) -> str:
    return f"{value / 1000:.1f} kHz" if value >= 1000 else f"{value:.0f} Hz"


def _pan(pan: float) -> str:
    if abs(pan) < 0.05:
        return "centre"
    if abs(pan) >= 0.98:
        return f"hard {'left' if pan < 0 else 'right'}"
    return f"{abs(pan) * 100:.0f}% {'left' if pan < 0 else 'right'}"


def _eq_words(values: Mapping[str, Sequence[Any]]) -> list[str]:
    words = []
    if "low_shelf_gain_db" in values:
        gain, hz = float(values["low_shelf_gain_db"][0]), float(values["low_shelf_cutoff_hz"][0])
        if abs(gain) >= _EQ_MOVE_DB:
            words.append(f"low shelf {gain:+.1f} dB below {_hz(hz)}")
    for gain, hz, q in zip(values.get("peak_gain_db", ()), values.get("peak_cutoff_hz", ()),
                           values.get("peak_q", ())):
        if abs(float(gain)) >= _EQ_MOVE_DB:
            words.append(f"{float(gain):+.1f} dB at {_hz(float(hz))} (Q {float(q):.1f})")
    if "high_shelf_gain_db" in values:
        gain, hz = float(values["high_shelf_gain_db"][0]), float(values["high_shelf_cutoff_hz"][0])
        if abs(gain) >= _EQ_MOVE_DB:
            words.append(f"high shelf {gain:+.1f} dB above {_hz(hz)}")
    return words


def _gain_reduction(stem: torch.Tensor, sample_rate: int, threshold: float, ratio: float,
                    knee: float) -> tuple[float, float]:
    """Mean and largest static gain reduction in dB over the stem's active 10 ms frames."""
    frame = max(int(_FRAME_S * sample_rate), 1)
    x = stem.detach().to("cpu", torch.float64)
    usable = x.shape[-1] // frame * frame
    if usable == 0:
        return 0.0, 0.0
    power = x[..., :usable].reshape(x.shape[0], -1, frame).pow(2).mean(dim=-1).amax(dim=0)
    level = 10 * torch.log10(power.clamp_min(1e-12)) + 3.0  # RMS to about the peak of a sine
    active = level > _ACTIVE_DB
    if not bool(active.any()):
        return 0.0, 0.0
    over = level[active] - threshold
    half = abs(knee) / 2
    curve = torch.where(over <= -half, torch.zeros_like(over),
                        torch.where(over >= half, over, (over + half).pow(2) / (2 * max(abs(knee), 1e-6))))
    reduction = (1 - 1 / max(ratio, 1e-6)) * curve
    return float(reduction.mean()), float(reduction.max())


def _flat(value: Any) -> list[float]:
    """A reported value (a number, a list, or an automated control's list of frames) as plain numbers."""
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [float(value)]


def _per_element(value: Any) -> list[float]:
    """A reported control's value per element, an automated element's frames averaged."""
    if not isinstance(value, (list, tuple)):
        return [float(value)]
    return [_level(item) for item in value]


def _level(value: Any) -> float:
    """One number for a reported control: its value, or the mean of an automated control's frames."""
    values = _flat(value)
    return sum(values) / len(values)


def _bells(by_name: Mapping[str, Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The stem's further peaking bands (``<stem>_bell2``, ...) that hold a cutoff, a Q and a gain."""
    bells = []
    for k in range(2, len(by_name) + 2):
        bell = by_name.get(f"{name}_bell{k}")
        if bell is None:
            break
        if {"cutoff_hz", "q", "gain_db"} <= set(bell["parameters"]):
            bells.append(bell)
    return bells


def describe_stems(graph: Graph, names: Sequence[str], nodes: Sequence[Mapping[str, Any]], stems: torch.Tensor,
                   sample_rate: int) -> dict[str, dict[str, Any]]:
    """Per stem, what the fitted console does to it (see the module's description).

    Args:
        graph: the console.
        names: the stem names, in the order of ``stems``.
        nodes: the report's node records (:func:`~grafx_core.fitting.report.node_report`), with ``"fitted"`` values.
        stems: ``[stems, channels, samples]``.
        sample_rate: in Hz.

    Returns:
        ``{stem: {"fader_db", "pan", "eq": [...], "compression_db": {"mean", "peak"} | None, "words"}}``;
        stems without a ``<stem>_fader`` node are left out.
    """
    by_name = {n["name"]: n for n in nodes if n.get("name")}
    result = {}
    for name, stem in zip(names, stems):
        fader = by_name.get(f"{name}_fader")
        if fader is None or "gain_db" not in fader["parameters"]:
            continue
        fitted = lambda node, key: node["parameters"][key]["fitted"]  # noqa: E731
        gain = _level(fitted(fader, "gain_db"))
        pan = _level(fitted(fader, "pan")) if "pan" in fader["parameters"] else 0.0
        frames = _flat(fitted(fader, "gain_db"))
        ride = f" (rides {min(frames):+.1f} to {max(frames):+.1f} dB)" if len(frames) > 1 else ""
        words = [f"fader {gain:+.1f} dB{ride}, {_pan(pan)}"]
        eq = by_name.get(f"{name}_eq")
        eq_words = _eq_words({k: _per_element(fitted(eq, k)) for k in eq["parameters"]}) if eq is not None else []
        eq_words += [word for bell in _bells(by_name, name) for word in _eq_words(
            {f"peak_{k}": _per_element(fitted(bell, k)) for k in ("cutoff_hz", "q", "gain_db")})]
        highpass = by_name.get(f"{name}_highpass")
        if highpass is not None and "cutoff_hz" in highpass["parameters"]:
            eq_words.insert(0, f"high-pass at {_hz(_level(fitted(highpass, 'cutoff_hz')))}")
        if eq is not None or eq_words:
            words.append("EQ " + (", ".join(eq_words) if eq_words else "flat"))
        compression = None
        compressor = by_name.get(f"{name}_compressor")
        if compressor is not None and {"threshold_db", "ratio", "knee_db"} <= set(compressor["parameters"]):
            threshold, ratio = _level(fitted(compressor, "threshold_db")), _level(fitted(compressor, "ratio"))
            mean, peak = _gain_reduction(stem, sample_rate, threshold, ratio, _level(fitted(compressor, "knee_db")))
            compression = {"mean": mean, "peak": peak}
            words.append(f"compressed about {mean:.1f} dB on average ({peak:.1f} dB at peaks), {ratio:.1f}:1 above "
                         f"{threshold:.0f} dBFS" if peak >= 0.1 else f"compressor idle (no gain reduction, {ratio:.1f}:1 above "
                         f"{threshold:.0f} dBFS)")
        result[name] = {"fader_db": gain, "pan": pan, "eq": eq_words, "compression_db": compression,
                        "words": "; ".join(words)}
    return result


_UNEXPRESSED_DB = -10.0  # a band whose residual is within 10 dB of the target is not reproduced


def residual_report(fitted: torch.Tensor, target: torch.Tensor, stems: torch.Tensor, names: Sequence[str],
                    sample_rate: int, worst: int = 3) -> dict[str, Any]:
    """What ``fitted`` leaves out of ``target`` (both ``[2, samples]``), band by band, and which stems play there.

    Returns:
        ``{"bands_hz", "residual_db" (residual over target per band, dB), "worst": [{"hz", "residual_db",
        "stems"}], "expressed": bool, "words": str}``; ``expressed`` is false where some band with a
        tenth or more of the target's energy is left within 10 dB of the target.
    """
    residual = _band_powers(target - fitted, sample_rate).sum(dim=(0, -1))
    mix = _band_powers(target, sample_rate).sum(dim=(0, -1))
    played = _band_powers(stems, sample_rate).sum(dim=(1, -1))  # [stems, bands]
    centres = _band_centres(sample_rate)
    ratio_db = 10 * torch.log10(residual.clamp_min(1e-20) / mix.clamp_min(1e-20))
    # Only bands that carry some of the mix count: a residual in an empty band is not heard.
    weight = mix / mix.max().clamp_min(1e-20)
    audible = weight > 1e-3
    order = [int(b) for b in torch.argsort(torch.where(audible, ratio_db, torch.full_like(ratio_db, -1e9)),
                                           descending=True)[:worst] if bool(audible[b])]
    rows = []
    for b in order:
        share = played[:, b] / played[:, b].sum().clamp_min(1e-20)
        concerned = [names[k] for k in torch.argsort(share, descending=True).tolist() if float(share[k]) >= 0.2]
        rows.append({"hz": float(centres[b]), "residual_db": float(ratio_db[b]), "stems": concerned})
    significant = audible & (weight > 0.1)
    expressed = not bool((ratio_db[significant] > _UNEXPRESSED_DB).any())
    where = "; ".join(f"{_hz(r['hz'])} ({r['residual_db']:+.0f} dB: {', '.join(r['stems']) or 'several stems'})"
                      for r in rows)
    words = ("the console reproduces every loud band within 10 dB" if expressed else
             "the console does not express part of this mix: the residual is within 10 dB of the target in "
             "loud bands") + (f"; least reproduced: {where}" if where else "")
    return {"bands_hz": centres.tolist(), "residual_db": ratio_db.tolist(), "worst": rows, "expressed": expressed,
            "words": words}
