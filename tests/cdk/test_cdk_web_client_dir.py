"""Where the CDK app (app.py and the pipeline app) finds the built web client: the directory `make web`
builds into, unless context `webClientDir` names another. (A missing build is tested with the other
settings' errors.)"""

import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from cdk_test_support import REPO_ROOT

from cdk.web_hosting import web_client_dir_from_context

WEB_CLIENT = REPO_ROOT / "web_client"
# Vite's own resolution of web_client/vite.config.ts for a production build.
RESOLVE_OUT_DIR = """
const { resolveConfig } = await import("vite");
const config = await resolveConfig({}, "build", "production");
process.stdout.write(config.build.outDir);
"""


def built_client_dir() -> Path:
    """Where `make web` (`npm --prefix web_client run build`, which is `vite build`) writes the client."""
    node = shutil.which("node")
    if node is None or not (WEB_CLIENT / "node_modules" / "vite").is_dir():
        pytest.fail("Node.js and web_client's npm dependencies are needed: run `make setup`")
    result = subprocess.run(
        [node, "--input-type=module", "-e", RESOLVE_OUT_DIR],
        cwd=WEB_CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return (WEB_CLIENT / result.stdout).resolve()


def test_without_context_the_app_deploys_the_directory_make_web_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / built_client_dir().relative_to(REPO_ROOT)
    built.mkdir(parents=True)
    (built / "index.html").write_text("<!doctype html>")
    monkeypatch.chdir(tmp_path)  # the CDK CLI runs the app from the repository's root

    assert web_client_dir_from_context(cdk.App().node) == built.resolve()


def test_the_web_client_dir_context_overrides_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    app = cdk.App(context={"webClientDir": str(tmp_path)})

    assert web_client_dir_from_context(app.node) == tmp_path.resolve()
