"""Cloud sign-in with the production build: managed login (code + PKCE), identity-pool credentials,
signed calls, sign-out. Cognito cannot be reached here, so its three HTTP endpoints are answered at the
browser's network boundary (Playwright routes) in their real wire formats; everything inside the page
is the production code path. The credentials it hands out are the stand-in's test credentials."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
from typing import Any

import pytest
from web_page_probes import wait_for_call_up, wait_for_state
from web_support import COGNITO_DOMAIN, TEST_CREDENTIALS, TEST_REGION, cloud_config

pytestmark = pytest.mark.browser

IDENTITY_ID = "us-east-1:11111111-2222-4333-8444-555555555555"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_id_token(expires_in: int) -> str:
    header = b64url(json.dumps({"alg": "RS256", "kid": "test"}).encode())
    claims = {"email": "caller@example.com", "exp": int(time.time()) + expires_in, "token_use": "id"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.c2lnbmF0dXJl"


class FakeCognito:
    """Managed login's /oauth2/authorize, /oauth2/token and /logout, and the identity pool's JSON API."""

    def __init__(self, site_url: str, *, token_lifetime: int = 3600) -> None:
        self.site_url = site_url
        self.token_lifetime = token_lifetime
        self.authorize: dict[str, str] = {}
        self.token_requests: list[dict[str, str]] = []
        self.identity_calls: list[tuple[str, dict[str, Any]]] = []
        self.logout: dict[str, str] = {}
        self.id_token = fake_id_token(token_lifetime)

    def install(self, context: Any) -> None:
        context.route(f"{COGNITO_DOMAIN}/**", self.managed_login)
        context.route(f"https://cognito-identity.{TEST_REGION}.amazonaws.com/**", self.identity_pool)

    def cors(self, request: Any) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
            "Access-Control-Allow-Headers": "*",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
        }

    def managed_login(self, route: Any) -> None:
        request = route.request
        url = urllib.parse.urlsplit(request.url)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/oauth2/authorize":
            self.authorize = query
            back = f"{query['redirect_uri']}?code=test-auth-code&state={urllib.parse.quote(query['state'])}"
            route.fulfill(status=302, headers={"Location": back})
        elif url.path == "/oauth2/token" and request.method == "POST":
            form = dict(urllib.parse.parse_qsl(request.post_data or ""))
            self.token_requests.append(form)
            body = {
                "id_token": self.id_token,
                "access_token": "access-token",
                "refresh_token": "refresh-token",
                "expires_in": self.token_lifetime,
                "token_type": "Bearer",
            }
            route.fulfill(status=200, json=body, headers=self.cors(request))
        elif url.path == "/oauth2/token":
            route.fulfill(status=204, headers=self.cors(request))
        elif url.path == "/logout":
            self.logout = query
            route.fulfill(status=200, content_type="text/html", body="<p>Signed out</p>")
        else:
            route.fulfill(status=404)

    def identity_pool(self, route: Any) -> None:
        request = route.request
        if request.method == "OPTIONS":
            route.fulfill(status=200, headers=self.cors(request))
            return
        target = request.headers.get("x-amz-target", "")
        body = json.loads(request.post_data or "{}")
        self.identity_calls.append((target, body))
        if target.endswith("GetId"):
            answer: dict[str, Any] = {"IdentityId": IDENTITY_ID}
        elif target.endswith("GetCredentialsForIdentity"):
            answer = {
                "IdentityId": IDENTITY_ID,
                "Credentials": {
                    "AccessKeyId": TEST_CREDENTIALS.access_key,
                    "SecretKey": TEST_CREDENTIALS.secret_key,
                    "SessionToken": TEST_CREDENTIALS.token,
                    "Expiration": int(time.time()) + 3600,
                },
            }
        else:
            route.fulfill(
                status=400, json={"__type": "UnknownOperationException"}, headers=self.cors(request)
            )
            return
        route.fulfill(
            status=200,
            body=json.dumps(answer),
            content_type="application/x-amz-json-1.1",
            headers=self.cors(request),
        )


@pytest.fixture
def signed_out_page(open_page: Any, local_site: Any, agentcore_standin: Any) -> tuple[Any, FakeCognito]:
    local_site.config = cloud_config(agentcore_standin.url)
    local_site.headers = {}
    page = open_page(local_site.url)
    cognito = FakeCognito(local_site.url)
    cognito.install(page.context)
    wait_for_state(page, "signed_out")
    return page, cognito


def test_sign_in_with_pkce_then_a_signed_call_then_sign_out(
    signed_out_page: tuple[Any, FakeCognito], local_site: Any, agentcore_standin: Any
) -> None:
    page, cognito = signed_out_page
    page.click("#sign-in")
    wait_for_state(page, "ready")
    page.shot("signed-in")

    auth = cognito.authorize
    assert auth["response_type"] == "code" and auth["client_id"] == "testclientid0123456789"
    assert auth["code_challenge_method"] == "S256" and auth["redirect_uri"] == f"{local_site.url}/"
    [token_request] = cognito.token_requests
    assert token_request["grant_type"] == "authorization_code" and token_request["code"] == "test-auth-code"
    verifier = token_request["code_verifier"]
    assert b64url(hashlib.sha256(verifier.encode()).digest()) == auth["code_challenge"]
    assert "code=" not in page.url, "the authorization code must not stay in the address bar"
    logins = cognito.identity_calls[0][1]["Logins"]
    assert logins == {f"cognito-idp.{TEST_REGION}.amazonaws.com/us-east-1_TestPool1": cognito.id_token}
    assert page.text_content("#user-name") == "caller@example.com"
    storage = page.evaluate("[Object.keys(sessionStorage), Object.keys(localStorage)]")
    assert storage[0] == ["voice-agent.tokens"] and storage[1] == [], storage

    page.click("#connect")
    wait_for_call_up(page)
    calls = agentcore_standin.behaviour.invocations
    assert [c.action for c in calls] == ["ice_config", "offer"] and all(c.signature_valid for c in calls)
    page.click("#hang-up")
    wait_for_state(page, "ended")
    targets = [target.rsplit(".", 1)[-1] for target, _ in cognito.identity_calls]
    assert targets == ["GetId", "GetCredentialsForIdentity"], (
        "credentials must be cached, not fetched per call"
    )

    page.click("#sign-out")
    page.wait_for_url(f"{COGNITO_DOMAIN}/logout*")
    assert cognito.logout == {"client_id": "testclientid0123456789", "logout_uri": f"{local_site.url}/"}
    page.goto(local_site.url)
    wait_for_state(page, "signed_out")


def test_an_expired_session_asks_the_user_to_sign_in_again(
    signed_out_page: tuple[Any, FakeCognito],
) -> None:
    page, _ = signed_out_page
    page.click("#sign-in")
    wait_for_state(page, "ready")
    # The tokens lapse and the refresh token is refused: the next call must ask for a new sign-in.
    page.evaluate(
        """() => {
      const tokens = JSON.parse(sessionStorage.getItem("voice-agent.tokens"));
      tokens.expiresAt = 0;
      sessionStorage.setItem("voice-agent.tokens", JSON.stringify(tokens));
    }"""
    )
    page.context.unroute(f"{COGNITO_DOMAIN}/**")
    page.context.route(
        f"{COGNITO_DOMAIN}/oauth2/token",
        lambda route: route.fulfill(
            status=400,
            json={"error": "invalid_grant"},
            headers={"Access-Control-Allow-Origin": route.request.headers.get("origin", "*")},
        ),
    )
    page.reload()
    wait_for_state(page, "ready")
    assert "Please sign in again" in page.text_content("#error")
    assert page.is_visible("#sign-in")
    page.shot("session-expired")
