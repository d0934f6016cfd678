"""The prose agrees with the code: calls shown in the docs and READMEs use
arguments the functions take, command lines use options the commands have,
and numbers quoted from the code are the code's.

Every inline code span and code block of README.md, the plugins' READMEs and
docs/**/*.rst that parses as Python is scanned for calls of grafx-core's
public functions; every line that runs ``grafx-core <command>`` (or ``make
demo ARGS=...``) for its ``--options``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import grafx_core
from grafx_core import testing
from grafx_core.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("plugins/*/README.md"), *ROOT.glob("examples/*/README.md"),
                *(ROOT / "docs").rglob("*.rst")])
FUNCTIONS = {name: getattr(grafx_core, name) for name in grafx_core.__all__
             if inspect.isfunction(getattr(grafx_core, name, None))}
FUNCTIONS["check_processor"] = testing.check_processor


def _snippets(text: str) -> list[str]:
    """Inline code spans (``rst`` and `markdown`) and indented or fenced code blocks."""
    spans = re.findall(r"``([^`]+)``", text) + re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text)
    fenced = re.findall(r"```(?:python|py)?\n(.*?)```", text, flags=re.S)
    indented = [match.group(1) for match in re.finditer(r"::\n\n((?:(?: {3,}.*)?\n)+)", text)]
    return spans + fenced + [inspect.cleandoc("\n" + block) for block in indented]


def _calls(snippet: str) -> list[ast.Call]:
    try:
        tree = ast.parse(snippet)
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
            and call.func.value.id in ("grafx_core", "testing"):
        return call.func.attr
    return None


def _call_problem(name: str, call: ast.Call) -> str | None:
    signature = inspect.signature(FUNCTIONS[name])
    params = signature.parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = [k.arg for k in call.keywords if k.arg is not None and k.arg not in accepted]
    if unknown:
        return f"{name}() takes no argument {unknown} (it takes {sorted(accepted)})"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    starred = any(isinstance(a, ast.Starred) for a in call.args)
    if not starred and not any(p.kind == p.VAR_POSITIONAL for p in params) and len(call.args) > len(positional):
        return f"{name}() takes {len(positional)} positional argument(s), the page passes {len(call.args)}"
    return None


def test_calls_shown_in_the_docs_match_the_functions_signatures():
    problems, checked = [], 0
    for page in PAGES:
        for snippet in _snippets(page.read_text(encoding="utf-8")):
            for call in _calls(snippet):
                name = _called_name(call)
                if name in FUNCTIONS:
                    checked += 1
                    problem = _call_problem(name, call)
                    if problem:
                        problems.append(f"{page.relative_to(ROOT)}: {ast.unparse(call)}: {problem}")
    assert checked > 10  # the scan finds the calls it is meant to check
    assert not problems, "\n".join(problems)


def _options(command: str) -> set[str]:
    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[command]).add_arguments(parser)
    return {option for action in parser._actions for option in action.option_strings}


def test_command_lines_in_the_docs_use_options_the_commands_have():
    commands = {name: _options(name) for name in COMMANDS}
    problems, checked = [], 0
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            match = re.search(rf"grafx-core ({'|'.join(COMMANDS)})\b(.*)", line) or \
                    re.search(r"make (demo) ARGS=\"([^\"]*)\"", line)
            if not match:
                continue
            command, rest = match.groups()
            for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest.split("#")[0]):
                checked += 1
                if option not in commands[command]:
                    problems.append(f"{page.relative_to(ROOT)}: grafx-core {command} has no option {option}")
    assert checked > 5
    assert not problems, "\n".join(problems)


def test_the_finite_difference_threshold_quoted_in_the_docs_is_the_code_s():
    estimator = pytest.importorskip("grafx_pedalboard.estimator")
    quoted = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        quoted += [(page, int(n)) for n in re.findall(r"up to \**(\d+)\** differentiable controls", text)]
    assert quoted
    wrong = [f"{page.relative_to(ROOT)} says {n}" for page, n in quoted if n != estimator.FD_MAX_PARAMETERS]
    assert not wrong, f"FD_MAX_PARAMETERS is {estimator.FD_MAX_PARAMETERS}: " + ", ".join(wrong)
