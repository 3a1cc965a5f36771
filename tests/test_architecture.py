"""The structure ARCHITECTURE.md describes is the structure of the tree.

- ARCHITECTURE.md names every module of the package (an empty ``__init__.py`` is no module), and every
  module it names exists;
- no module is much over 400 lines;
- a function imports only an optional heavy dependency (or a module of ours that loads one at its
  top), with a comment saying so; everything else is imported at the top of the module;
- ``answers/`` is the bottom layer: it imports nothing else of the package at run time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "regenesis"
MODULES = sorted(path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*.py") if path.stat().st_size)
MAX_LINES = 420
HEAVY = {"torch", "transformers", "trl", "peft", "datasets", "matplotlib", "llama_cpp", "vllm", "ray",
         "xgrammar", "litellm", "openai", "httpx", "gguf", "pyarrow", "sympy", "numpy"}
OURS_THAT_LOAD_HEAVY = {"regenesis.models.llama_prefix", "regenesis.models.llama_constraint",
                        "regenesis.models.llama_batch", "regenesis.finetune.callbacks", "regenesis.answers.latex_sympy"}


def test_architecture_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`(regenesis/[\w/]+\.py)`", text))
    assert sorted(set(MODULES) - named) == [], "modules ARCHITECTURE.md does not name"
    assert sorted(named - set(MODULES)) == [], "ARCHITECTURE.md names modules that do not exist"


@pytest.mark.parametrize("module", MODULES)
def test_no_module_is_much_over_400_lines(module):
    assert len((ROOT / module).read_text().splitlines()) <= MAX_LINES


def imports_below_the_top(tree: ast.Module):
    """Imports that are not statements of the module body (nor inside its ``if TYPE_CHECKING:``)."""
    top = set()
    for node in tree.body:
        top.add(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top.update(node.body)
        if isinstance(node, ast.Try):
            top.update(node.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in top:
            yield node


def imported_name(node: ast.Import | ast.ImportFrom) -> str:
    return node.module if isinstance(node, ast.ImportFrom) else node.names[0].name


@pytest.mark.parametrize("module", MODULES)
def test_functions_import_only_heavy_optional_dependencies_and_say_so(module):
    source = (ROOT / module).read_text()
    lines = source.splitlines()
    wrong = []
    for node in imports_below_the_top(ast.parse(source)):
        name = imported_name(node)
        heavy = name.split(".")[0] in HEAVY or name in OURS_THAT_LOAD_HEAVY
        commented = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
        if not (heavy and commented):
            wrong.append(f"line {node.lineno}: {name}" + ("" if heavy else " (not heavy: import it at the top)"))
    assert wrong == []


def test_answers_is_the_bottom_layer():
    for path in (PACKAGE / "answers").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                name = imported_name(node) or ""
                assert not name.startswith("regenesis.") or name.startswith("regenesis.answers"), (path, name)
