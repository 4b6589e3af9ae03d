"""Imports: every production module imports on its own, and the CLI starts without the heavy
libraries.

The project's own imports sit at module level (issue 15); the few left inside functions say why
(`# lazy: ...`): an import cycle, or an own module that pulls in a heavy library on the CLI
start-up path. These tests keep both honest: a moved import that closes a cycle fails (a), one
that drags torch & co. into `metallmix` start-up fails (b), one that puts numpy, pandas or a
command body's own modules back on the `metallmix --help` path fails (c).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("agent", "tools", "knowledge", "ui", "eval")
# not importable on their own: running them is their point
SCRIPTS = ("__main__",)
HEAVY = ("torch", "torchvision", "timm", "xgboost", "shap", "faiss", "gradio")

_IMPORT_ALL = r"""
import importlib, json, pkgutil, sys, traceback

package = sys.argv[1]
failed = {}

def note(name):
    failed[name] = traceback.format_exc(limit=3)

try:
    root = importlib.import_module(package)
except Exception:
    note(package)
else:
    for info in pkgutil.walk_packages(root.__path__, package + ".", onerror=note):
        if info.name.rsplit(".", 1)[-1] in SCRIPTS:
            continue
        try:
            importlib.import_module(info.name)
        except Exception:
            note(info.name)
print(json.dumps(failed))
"""


def _run(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_production_module_imports(package: str) -> None:
    """(a) Each package's modules, imported one after the other in a fresh interpreter (the
    package first, as any caller does): none fails, e.g. on a cycle an import move closed."""
    failed = json.loads(_run(f"SCRIPTS = {SCRIPTS!r}\n" + _IMPORT_ALL, package))
    assert failed == {}, "\n".join(f"{name}:\n{tb}" for name, tb in failed.items())


_CLI_START = r"""
import json, sys

import ui.cli

stage = sys.argv[1]
if stage == "help":  # `metallmix --help` builds the app with every command
    ui.cli.build_app()
elif stage == "recommend":  # `metallmix recommend`: its command module and what it ranks with
    ui.cli.build_app("recommend")
    import knowledge.recommend  # noqa: F401
    import knowledge.metalearner  # noqa: F401
    import knowledge.explain  # noqa: F401
print(json.dumps(sorted(name for name in HEAVY if name in sys.modules)))
"""


@pytest.mark.parametrize("stage", ["entry", "help", "recommend"])
def test_cli_start_up_leaves_the_heavy_libraries_out(stage: str) -> None:
    """(b) The `metallmix` entry point (`ui.cli:main`), its `--help` (every command module) and
    the `recommend` command's modules import none of torch, xgboost, shap, faiss, gradio: those
    load inside the commands that use them."""
    loaded = json.loads(_run(f"HEAVY = {HEAVY!r}\n" + _CLI_START, stage))
    assert loaded == []


# imported by the commands that use them, never by `metallmix --help` (issue: --help took 0.76 s
# instead of 0.39 s when the command modules imported these at module level)
HELP_LEFT_OUT = ("numpy", "pandas", "knowledge.datasets", "knowledge.metafeatures",
                 "knowledge.metalearner", "knowledge.recommend", "knowledge.meta_dataset", "eval.agent",
                 "eval.questions", "agent.session")

_HELP_MODULES = r"""
import json, sys

import ui.cli

ui.cli.build_app()  # what `metallmix --help` does: every command module, every option
print(json.dumps(sorted(name for name in HELP_LEFT_OUT if name in sys.modules)))
"""


def test_cli_help_leaves_numpy_and_the_command_bodies_out() -> None:
    """(c) Building the full app (`metallmix --help`) in a fresh interpreter imports neither numpy
    nor pandas nor the project modules only the command bodies use: those imports sit inside the
    commands (`# lazy: CLI start-up (--help imports every command module)`)."""
    loaded = json.loads(_run(f"HELP_LEFT_OUT = {HELP_LEFT_OUT!r}\n" + _HELP_MODULES))
    assert loaded == []


def test_no_production_module_is_over_400_lines() -> None:
    """Issue 15: a module over 400 lines mixes concepts; split it along its seams."""
    root = Path(__file__).resolve().parents[1]
    long = {str(p.relative_to(root)): n for pkg in ("agent", "tools", "knowledge", "ui", "eval")
            for p in (root / pkg).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long
