"""Who may import whom, read from the source: the benchmarks and the testbed stand without the test
suites, and the operations commands (installed alone from ops/pyproject.toml) stand without either."""

from pathlib import Path

from tests.support.source_imports import find_cycle, imported_modules, module_name

REPO_ROOT = Path(__file__).resolve().parents[2]


def importers_of(root: Path, forbidden: set[str], *packages: str) -> dict[str, set[str]]:
    """Each source file under ``packages`` that imports one of ``forbidden`` (or a module inside one)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            hits = {m for m in imported_modules(path, root) if m.split(".")[0] in forbidden}
            if hits:
                found[path.relative_to(root).as_posix()] = hits
    return found


# Each package and the directory its imports are resolved from.
PACKAGES = {
    "voice_agent": REPO_ROOT / "runtime_image",
    "voice_agent_ops": REPO_ROOT / "ops",
    "cdk": REPO_ROOT,
    "testbed": REPO_ROOT,
    "bench": REPO_ROOT,
}


def project_import_graph() -> dict[str, set[str]]:
    """Every module of the project's packages -> the project modules it imports."""
    paths = {
        module_name(path, root): (path, root)
        for package, root in PACKAGES.items()
        for path in (root / package).rglob("*.py")
    }
    return {
        name: (imported_modules(path, root) & set(paths)) - {name} for name, (path, root) in paths.items()
    }


def test_no_module_of_the_project_takes_part_in_an_import_cycle() -> None:
    graph = project_import_graph()
    assert (
        len(graph) > 50 and "voice_agent.calls" in graph and "voice_agent.audio" in graph["voice_agent.calls"]
    )
    cycle = find_cycle(graph)
    assert cycle == [], " -> ".join(cycle)


def test_bench_and_testbed_import_nothing_from_the_test_suites() -> None:
    assert importers_of(REPO_ROOT, {"tests"}, "bench", "testbed") == {}


def test_the_operations_commands_import_neither_the_testbed_nor_the_tests() -> None:
    assert importers_of(REPO_ROOT, {"tests", "testbed", "bench"}, "ops/voice_agent_ops") == {}


def test_an_import_of_the_tests_is_found_however_it_is_written(tmp_path: Path) -> None:
    for package in ("bench", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    sources = {
        "plain.py": "import tests.support.turn\n",
        "late.py": "def later():\n    from tests import support\n",
        "relative.py": "from .. import tests\n",
        "clean.py": "import testbed.turn\nfrom . import plain\n",
    }
    for name, source in sources.items():
        (tmp_path / "bench" / name).write_text(source)
    assert importers_of(tmp_path, {"tests"}, "bench") == {
        "bench/late.py": {"tests"},
        "bench/plain.py": {"tests.support.turn"},
        "bench/relative.py": {"tests"},
    }
