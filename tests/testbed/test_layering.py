"""Who may import whom, read from the source: the benchmarks and the testbed stand without the test
suites, and the operations commands (installed alone from ops/pyproject.toml) stand without either."""

from pathlib import Path

from tests.support.source_imports import imported_modules

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
