"""The plan of `shared/` holds (contract §2): one concern per sub-package, imports only downward, and the outside
world reached only from its own room. Reads the source with `ast`; imports nothing of the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"

# Each part of shared/ and its rank: a module may import its own part or a part of a lower rank, never higher.
RANKS = {
    "errors": 0,
    "clock": 0,
    "caching": 0,
    "waits": 0,
    "telemetry": 0,
    "settings": 1,
    "storage_connection": 0,
    "validation": 1,
    "model": 2,
    "ado": 3,
    "sentry": 3,
    "store": 3,
    "deliveries": 3,
    "connections": 4,
    "lookups": 5,
    "sync": 5,
    "intake": 5,
    "jobs": 6,
    "admin": 6,
    "sentryapp": 7,
    "pages": 8,
}
# Which parts may import which outside libraries: storage SDKs only in store/, HTTP clients only in the rooms
# that speak to Azure DevOps or Sentry (store/ too: the storage SDK runs on a requests transport).
ONLY_IN = {
    "azure.data": {"store"},
    "azure.storage": {"store"},
    "azure.core": {"store", "ado"},
    "azure.identity": {"ado", "store"},
    "requests": {"ado", "sentry", "store"},
    "urllib3": {"ado", "sentry", "store"},
    "http.client": set(),
    "urllib.request": set(),
    "azure.functions": set(),
    "jinja2": {"pages"},
    "markupsafe": {"pages"},
    "selenium": set(),
    # Telemetry (optional): only shared/telemetry.py, which imports it only when the setting is present.
    "opentelemetry": {"telemetry"},
    "azure.monitor": {"telemetry"},
}


def _modules() -> list[Path]:
    return sorted(p for p in SHARED.rglob("*.py"))


def _part(path: Path) -> str:
    relative = path.relative_to(SHARED)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(source: str) -> list[str]:
    tree = ast.parse(source)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "shared":
                names += [f"shared.{alias.name}" for alias in node.names]
    return names


def _violations(source: str, part: str) -> list[str]:
    found = []
    for name in _imports(source):
        if name.startswith("shared."):
            target = name.split(".")[1]
            if target not in RANKS:
                found.append(f"imports {name}, which is not a known part of shared/")
            elif target != part and RANKS[target] >= RANKS[part]:
                found.append(
                    f"imports {name} upward or sideways ({part} is rank {RANKS[part]}, {target} {RANKS[target]})"
                )
        for library, allowed in ONLY_IN.items():
            if (name == library or name.startswith(library + ".")) and part not in allowed:
                found.append(f"imports {name}, allowed only in {sorted(allowed) or 'nothing under shared/'}")
    return found


def test_every_part_of_shared_has_a_rank() -> None:
    parts = {_part(p) for p in _modules() if p.name != "__init__.py" or p.parent != SHARED}
    assert parts <= set(RANKS), f"new parts need a rank here: {sorted(parts - set(RANKS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_only_downward_and_the_outside_only_from_its_room(path: Path) -> None:
    assert _violations(path.read_text(encoding="utf-8"), _part(path)) == []


def test_the_checker_catches_what_it_is_for() -> None:
    """The rules above notice an upward or sideways import, and storage or HTTP in the wrong room."""
    ado_found = _violations(
        "import requests\nfrom shared.store import base\nfrom shared.sync.rules import decide\n", "ado"
    )
    assert len(ado_found) == 2 and all("upward or sideways" in v for v in ado_found)
    sync_found = _violations("from azure.data.tables import TableClient\nimport requests\n", "sync")
    assert len(sync_found) == 2 and "azure.data.tables" in sync_found[0] and "requests" in sync_found[1]
    assert _violations("from shared import store\n", "model") != []


def test_functions_never_reach_storage_or_azure_devops_directly() -> None:
    """The trigger adapters speak only to shared/ (and azure.functions)."""
    for path in sorted((ROOT / "functions").glob("*.py")):
        for name in _imports(path.read_text(encoding="utf-8")):
            assert not name.startswith(("azure.data", "azure.storage", "requests")), f"{path.name} imports {name}"


def test_no_module_of_shared_is_over_about_300_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    assert {name: lines for name, lines in sizes.items() if lines > 320} == {}
