"""Each package's docstring lists exactly its modules, one ``- ``name``: ...`` line each."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import tidings

PACKAGES = sorted(m.name for m in pkgutil.iter_modules(tidings.__path__) if m.ispkg)
ENTRY = re.compile(r"^- ``(\w+)``: \S")


def listed(doc: str) -> list[str]:
    """The module names of the ``Modules:`` list in ``doc``, in order."""
    lines = doc.splitlines()
    start = lines.index("Modules:") + 1
    return [m.group(1) for line in lines[start:] if (m := ENTRY.match(line))]


def test_every_package_is_checked() -> None:
    assert {"api", "bus", "cli", "core", "gateway", "mail", "push", "services", "store",
            "workers"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_docstring_lists_exactly_the_modules(name: str) -> None:
    package = importlib.import_module(f"tidings.{name}")
    assert package.__doc__, f"tidings.{name} has no docstring"
    assert "Modules:" in package.__doc__.splitlines(), f"tidings.{name} has no 'Modules:' list"
    names = listed(package.__doc__)
    present = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert len(names) == len(set(names)), f"tidings.{name} lists a module twice: {names}"
    assert set(names) - present == set(), f"tidings.{name} lists missing modules"
    assert present - set(names) == set(), f"tidings.{name} omits modules"


@pytest.mark.parametrize("doc, names", [
    ("Top.\n\nModules:\n\n- ``a``: one.\n- ``b``: two.\n", ["a", "b"]),
    ("Top.\n\nModules:\n\n- ``a``: one.\n  more of a.\n- ``b``: two.\n", ["a", "b"]),
])
def test_listed_reads_the_list(doc: str, names: list[str]) -> None:
    assert listed(doc) == names
