"""The client under the production Content-Security-Policy that CloudFront sends (cdk/web_hosting.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from web_page_probes import csp_problems, wait_for_call_up, wait_for_state
from web_support import TEST_REGION, cloud_config, inject_test_credentials_script

from cdk.csp import content_security_policy

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def production_csp() -> Any:
    """`content_security_policy(region, extra_connect_sources=...)` from the CDK app (cdk/csp.py)."""
    return content_security_policy


def test_production_page_loads_and_offers_sign_in_without_csp_violations(
    open_page: Any, local_site: Any, agentcore_standin: Any, production_csp: Any
) -> None:
    local_site.config = cloud_config(agentcore_standin.url)
    local_site.headers = {"Content-Security-Policy": production_csp(TEST_REGION)}
    page = open_page(local_site.url)
    wait_for_state(page, "signed_out")
    assert page.is_visible("#sign-in")
    assert csp_problems(page) == []
    assert agentcore_standin.behaviour.invocations == [], "nothing may be called before sign-in"
    page.shot("signed-out")


def test_a_whole_cloud_call_runs_under_the_production_csp(
    open_page: Any, cloud_site: Any, agentcore_standin: Any, production_csp: Any
) -> None:
    """The stand-in's origin is added to connect-src for this test only (it replaces AgentCore's)."""
    cloud_site.config = cloud_config(agentcore_standin.url)
    cloud_site.headers = {
        "Content-Security-Policy": production_csp(TEST_REGION, extra_connect_sources=[agentcore_standin.url])
    }
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_call_up(page)
    page.click("#hang-up")
    wait_for_state(page, "ended")
    assert csp_problems(page) == []


def test_the_production_bundle_has_no_inline_script_no_cdn_and_no_test_hook(
    production_dist: Path, test_dist: Path
) -> None:
    html = (production_dist / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="/assets/', s) for s in scripts), scripts
    assert all(body.strip() == "" for body in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S))
    assert not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r'(src|href)="(https?:)?//', html), "a resource from another origin"
    production_js = "".join(p.read_text() for p in (production_dist / "assets").glob("*.js"))
    test_js = "".join(p.read_text() for p in (test_dist / "assets").glob("*.js"))
    for hook in ("__VOICE_AGENT_TEST_CREDENTIALS__", "__VOICE_AGENT_TEST_TIMINGS__"):
        assert hook not in production_js
        assert hook in test_js, "the hook check above would prove nothing"
