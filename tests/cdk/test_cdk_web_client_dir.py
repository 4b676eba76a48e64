"""Where the CDK app (app.py) and the pipeline app find the built web client: one definition for both."""

import ast
from pathlib import Path

import aws_cdk as cdk
import pytest
from cdk_test_support import REPO_ROOT

from cdk.web_hosting import DEFAULT_WEB_CLIENT_DIR, WebClientDirError, web_client_dir_from_context


def assignments_of(name: str) -> list[str]:
    found = []
    for path in [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "cdk").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(path.relative_to(REPO_ROOT).as_posix())
    return found


def test_the_default_web_client_dir_is_defined_once() -> None:
    assert assignments_of("DEFAULT_WEB_CLIENT_DIR") == ["cdk/web_hosting.py"]


def test_without_context_the_app_uses_web_client_dist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / DEFAULT_WEB_CLIENT_DIR).mkdir(parents=True)
    (tmp_path / DEFAULT_WEB_CLIENT_DIR / "index.html").write_text("<!doctype html>")
    monkeypatch.chdir(tmp_path)  # the CDK CLI runs the app from the repository
    assert web_client_dir_from_context(cdk.App().node) == (tmp_path / "web_client" / "dist").resolve()


def test_the_web_client_dir_context_overrides_it(tmp_path: Path) -> None:
    app = cdk.App(context={"webClientDir": str(tmp_path)})
    with pytest.raises(WebClientDirError, match="webClientDir="):
        web_client_dir_from_context(app.node)
