"""--force replaces an earlier run's results and nothing else: a manifest naming paths outside the folder,
through a link, or files changed since they were written is refused before anything is removed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from grafx_core.fitting.outputs import MANIFEST, OutputFolderError, ResultsFolder


def _entry(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _earlier_run(folder: Path) -> None:
    with ResultsFolder(folder) as results:
        Path(results.file("fitted.wav")).write_bytes(b"fitted")
        Path(results.file("sources/00_kick.wav")).write_bytes(b"kick")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {os.fspath(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_force_removes_exactly_what_the_earlier_run_wrote(tmp_path):
    out = tmp_path / "out"
    _earlier_run(out)
    (out / "mine.txt").write_text("not a result")
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert manifest["fitted.wav"] == _entry(out / "fitted.wav")
    with pytest.raises(OutputFolderError, match="pass --force"):
        ResultsFolder(out)
    with ResultsFolder(out, force=True) as results:
        assert not (out / "fitted.wav").exists() and not (out / "sources").exists()
        assert (out / "mine.txt").read_text() == "not a result"
        with pytest.raises(OutputFolderError, match="mine.txt' exists and was not written by this run"):
            results.file("mine.txt")
        Path(results.file("fitted.wav")).write_bytes(b"new")
    assert json.loads((out / MANIFEST).read_text())["files"] == {"fitted.wav": _entry(out / "fitted.wav")}


@pytest.mark.parametrize("attack", ["parent", "absolute", "link-to-folder", "link-to-file", "changed", "unhashed",
                                    "folder", "manifest-link"])
def test_a_malicious_or_stale_manifest_touches_nothing(tmp_path, attack):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "x"
    victim.write_bytes(b"precious")
    _earlier_run(out)
    files = json.loads((out / MANIFEST).read_text())["files"]
    if attack == "parent":
        files["../elsewhere/x"] = _entry(victim)
    elif attack == "absolute":
        files[os.fspath(victim)] = _entry(victim)
    elif attack == "link-to-folder":
        (out / "linked").symlink_to(elsewhere, target_is_directory=True)
        files["linked/x"] = _entry(victim)
    elif attack == "link-to-file":
        (out / "report.json").symlink_to(victim)
        files["report.json"] = _entry(victim)
    elif attack == "changed":
        (out / "fitted.wav").write_bytes(b"edited by hand")
    elif attack == "unhashed":
        files["fitted.wav"] = {}
    elif attack == "folder":
        (out / "plots").mkdir()
        files["plots"] = {"bytes": 0, "sha256": "0" * 64}
    (out / MANIFEST).write_text(json.dumps({"files": files}))
    if attack == "manifest-link":
        os.remove(out / MANIFEST)
        (out / MANIFEST).symlink_to(victim)
    before = _snapshot(tmp_path)
    reason = {"parent": "leaves the folder", "absolute": "not a relative path", "link-to-folder": "symbolic link",
              "link-to-file": "symbolic link", "changed": "changed since grafx-core wrote it",
              "unhashed": "no recorded size and hash", "folder": "not a plain file",
              "manifest-link": "is a symbolic link"}[attack]
    with pytest.raises(OutputFolderError, match=reason):
        ResultsFolder(out, force=True)
    assert _snapshot(tmp_path) == before and victim.read_bytes() == b"precious"


def test_results_are_never_written_through_a_link_or_outside(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    results = ResultsFolder(out)
    (out / "sources").symlink_to(elsewhere, target_is_directory=True)
    for name in ("sources/00_kick.wav", "../x.wav", "/tmp/x.wav", "a/./b.wav"):
        with pytest.raises(OutputFolderError, match="never through a link"):
            results.file(name)
    assert list(elsewhere.iterdir()) == []


def test_render_force_never_writes_through_a_link(tmp_path):
    from grafx_core import AudioFileError
    from grafx_core.commands.render import _check_outputs

    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"precious")
    link = tmp_path / "out.wav"
    link.symlink_to(victim)
    with pytest.raises(AudioFileError, match="is a symbolic link"):
        _check_outputs([str(link)], [], force=True)
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioFileError, match="is a folder"):
        _check_outputs([str(tmp_path / "folder.wav")], [], force=True)
    assert victim.read_bytes() == b"precious"
