"""The structure of cdk/: what each module imports, read from the source (every import, those under
`if TYPE_CHECKING:` and inside functions included)."""

import ast
from pathlib import Path

from cdk_test_support import REPO_ROOT

CDK_DIR = REPO_ROOT / "cdk"
AGENT_PACKAGE = "voice_agent"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports; `from cdk import zones` counts as cdk.zones when that is a module."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (REPO_ROOT / (candidate.replace(".", "/") + ".py")).exists():
                    modules.add(candidate)
    return modules


def cdk_modules() -> dict[str, Path]:
    return {f"cdk.{path.stem}": path for path in sorted(CDK_DIR.glob("*.py")) if path.stem != "__init__"}


def test_only_the_agent_contract_module_imports_the_agents_code() -> None:
    importers = {
        name
        for name, path in cdk_modules().items()
        if any(m == AGENT_PACKAGE or m.startswith(f"{AGENT_PACKAGE}.") for m in imported_modules(path))
    }
    assert importers == {"cdk.agent_contract"}
