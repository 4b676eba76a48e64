"""The structure of cdk/: what each module imports, read from the source (every import, those under
`if TYPE_CHECKING:` and inside functions included)."""

from pathlib import Path

from cdk_test_support import REPO_ROOT

from tests.support.source_imports import find_cycle, imported_modules

CDK_DIR = REPO_ROOT / "cdk"
AGENT_PACKAGE = "voice_agent"


def cdk_modules() -> dict[str, Path]:
    return {f"cdk.{path.stem}": path for path in sorted(CDK_DIR.glob("*.py")) if path.stem != "__init__"}


def import_graph() -> dict[str, set[str]]:
    """cdk module -> the cdk modules it imports."""
    modules = cdk_modules()
    return {name: imported_modules(path, REPO_ROOT) & set(modules) for name, path in modules.items()}


def test_no_module_of_cdk_takes_part_in_an_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle == [], " -> ".join(cycle)


def test_the_cycle_search_names_the_modules_of_a_cycle() -> None:
    graph = {"cdk.a": {"cdk.b"}, "cdk.b": {"cdk.c"}, "cdk.c": {"cdk.a"}, "cdk.d": set()}
    assert find_cycle(graph) == ["cdk.a", "cdk.b", "cdk.c", "cdk.a"]


def test_imports_under_type_checking_and_inside_functions_count(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from cdk.agent import AgentStack\n"
        "def later():\n    from cdk import zones\n"
    )
    assert {"cdk.agent", "cdk.zones"} <= imported_modules(module, REPO_ROOT)


def test_only_the_agent_contract_module_imports_the_agents_code() -> None:
    importers = {
        name
        for name, path in cdk_modules().items()
        if any(
            m == AGENT_PACKAGE or m.startswith(f"{AGENT_PACKAGE}.") for m in imported_modules(path, REPO_ROOT)
        )
    }
    assert importers == {"cdk.agent_contract"}
