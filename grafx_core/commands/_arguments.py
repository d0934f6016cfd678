"""Argument types shared by the commands: each refuses a bad value with argparse's one-line error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch

from ..native_code import NativeCodeError, allow_plugin_folders

__all__ = ["at_least", "whole_number_between", "seconds_between", "positive_number", "seconds_at_least", "device_name", "plugin_folder",
           "add_allow_plugins", "threads_count", "seed_number", "MAX_THREADS"]


def at_least(minimum: int) -> Callable[[str], int]:
    """A whole number no smaller than ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value

    return parse


def whole_number_between(minimum: int, maximum: int, why: str = "") -> Callable[[str], int]:
    """A whole number from ``minimum`` to ``maximum``; ``why`` says what the upper bound protects."""
    def parse(text: str) -> int:
        value = at_least(minimum)(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected at most {maximum}{why}, got {value}")
        return value

    return parse


def seconds_between(minimum: float, maximum: float, why: str = "") -> Callable[[str], float]:
    """A finite duration in seconds from ``minimum`` to ``maximum``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not (math.isfinite(value) and minimum <= value <= maximum):
            bound = f"at least {minimum:g}" if math.isnan(value) or value < minimum else f"at most {maximum:g}"
            raise argparse.ArgumentTypeError(f"expected {bound} seconds ({minimum:g} to {maximum:g}{why}), got {text}")
        return value

    return parse


def positive_number(text: str) -> float:
    """A finite number above 0 (``nan``, ``inf`` and ``0`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text}")
    return value


def seconds_at_least(minimum: float) -> Callable[[str], float]:
    """A finite duration in seconds no shorter than ``minimum``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(
                f"expected at least {minimum:g} seconds (the loss's longest frame needs that), got {text}")
        return value

    return parse


MAX_THREADS = 256
"""Most torch threads a command takes (``torch.set_num_threads`` accepts any count, and starts them)."""

def device_name(text: str) -> str:
    """``auto`` or a torch device that exists here."""
    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected auto or a torch device such as cpu or cuda:0, got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here (use cpu, or auto to take CUDA "
                                         "when present)")
    return text


def plugin_folder(text: str) -> str:
    """A folder from which processors may load native plug-ins; allowed as it is parsed."""
    try:
        allow_plugin_folders(text)
    except NativeCodeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_allow_plugins(parser: argparse.ArgumentParser) -> None:
    """Declare ``--allow-plugins DIR``: a graph or options file alone never makes a render load native code."""
    parser.add_argument("--allow-plugins", type=plugin_folder, action="append", default=[], metavar="DIR",
                        help="let processors load native plug-ins (VST3, AU) found below DIR; repeat for more "
                        "folders. A graph or options file naming a plug-in path elsewhere is refused")


threads_count = whole_number_between(1, MAX_THREADS)
"""``--threads``: 1 to :data:`MAX_THREADS`."""

seed_number = whole_number_between(0, 2**32 - 1, " (seeds are 32-bit)")
"""``--seed``: 0 to 2**32 - 1 (numpy's seed sequences refuse negative ones)."""
