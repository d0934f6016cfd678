"""Running Ardour's programs: a run that dies of a signal is rerun, after clearing what it left."""

from __future__ import annotations

import os
import stat

import pytest

from grafx_ardour.errors import ArdourRunError
from grafx_ardour.tools import run_tool

CRASHING_TOOL = """#!/bin/sh
# Dies of SIGABRT on the first {crashes} runs (counted in a file), then prints what it was given.
count=$(cat "{counter}" 2>/dev/null || echo 0)
echo $((count + 1)) > "{counter}"
if [ "$count" -lt {crashes} ]; then echo half > "{left}"; kill -ABRT $$; fi
echo "ran with $*"
"""


def _fake_tool(tmp_path, monkeypatch, crashes: int) -> tuple[str, os.PathLike]:
    """An executable named like an Ardour program on ``PATH`` that crashes ``crashes`` times first."""
    bin_dir, left = tmp_path / "bin", tmp_path / "left.txt"
    bin_dir.mkdir()
    tool = bin_dir / "ardour7-fake"
    tool.write_text(CRASHING_TOOL.format(crashes=crashes, counter=tmp_path / "count", left=left))
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tool.name, left


def test_a_crashed_run_is_cleared_and_rerun_until_one_finishes(tmp_path, monkeypatch):
    name, left = _fake_tool(tmp_path, monkeypatch, crashes=2)
    cleared = []

    def clear() -> None:
        cleared.append(left.read_text().strip())
        left.unlink()

    output = run_tool(name, ["a", "b"], attempts=3, before_rerun=clear)
    assert output.strip() == "ran with a b"
    assert cleared == ["half", "half"]
    assert (tmp_path / "count").read_text().strip() == "3"


def test_a_tool_that_keeps_crashing_fails_with_its_status_after_the_last_try(tmp_path, monkeypatch):
    name, _ = _fake_tool(tmp_path, monkeypatch, crashes=5)
    calls = []
    with pytest.raises(ArdourRunError, match=r"ardour7-fake failed \(exit status (-6|134)\)"):
        run_tool(name, [], attempts=3, before_rerun=lambda: calls.append(1))
    assert (tmp_path / "count").read_text().strip() == "3"
    assert len(calls) == 2, "nothing is cleared after the last try: its leftovers are the user's evidence"
