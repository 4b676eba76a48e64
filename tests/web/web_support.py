"""Constants and small helpers shared by the browser tests (imported by conftest and tests alike)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import urllib.request
from pathlib import Path

from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
WEB_CLIENT = REPO / "web_client"
RESULTS = REPO / "test-results" / "web"

TEST_REGION = "us-east-1"
TEST_RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/voice_agent_test-AbCdEf1234"
TEST_CREDENTIALS = Credentials("AKIDVOICEAGENTTEST01", "test-secret-key-for-sigv4", "test-session-token")
COGNITO_DOMAIN = "https://voice-agent-test.auth.us-east-1.amazoncognito.com"


# tests.support is imported as a package from the repository root, which pytest does not put on sys.path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def ping_status(agent_url: str) -> str:
    with urllib.request.urlopen(f"{agent_url}/ping", timeout=5) as response:
        return json.load(response)["status"]


def load_local_up() -> types.ModuleType:
    """scripts/local_up.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("local_up", REPO / "scripts" / "local_up.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cloud_config(standin_url: str, *, relay_only: bool = True) -> dict[str, object]:
    """A cloud-mode config.json whose AgentCore endpoint is the stand-in; Cognito ids are never used."""
    return {
        "mode": "cloud",
        "region": TEST_REGION,
        "runtimeArn": TEST_RUNTIME_ARN,
        "qualifier": "DEFAULT",
        "userPoolId": "us-east-1_TestPool1",
        "userPoolClientId": "testclientid0123456789",
        "identityPoolId": "us-east-1:00000000-0000-4000-8000-000000000000",
        "cognitoDomain": COGNITO_DOMAIN,
        "relayOnly": relay_only,
        "agentcoreEndpoint": standin_url,
    }


def inject_test_credentials_script() -> str:
    """Read only by `--mode test` builds (see web_client/src/main.ts); production ignores it."""
    credentials = {
        "accessKeyId": TEST_CREDENTIALS.access_key,
        "secretAccessKey": TEST_CREDENTIALS.secret_key,
        "sessionToken": TEST_CREDENTIALS.token,
    }
    return f"window.__VOICE_AGENT_TEST_CREDENTIALS__ = {json.dumps(credentials)};"
