"""The web client's Content-Security-Policy, in its own module without aws_cdk.

CloudFront sends it in production (cdk/web_hosting.py); `make up` (scripts/local_up.py) sends the same policy
plus the local agent, so CSP mistakes show up locally too. Standard library only: cheap to import.
"""

from collections.abc import Iterable


def content_security_policy(region: str, *, extra_connect_sources: Iterable[str] = ()) -> str:
    """The production CSP: scripts from this origin only; connections only to this region's AgentCore
    data plane (HTTPS, and WSS for calls over its WebSocket contract) and Cognito endpoints (managed login's
    token endpoint, identity pool, user pool)."""
    connect = [
        "'self'",
        f"https://bedrock-agentcore.{region}.amazonaws.com",
        f"wss://bedrock-agentcore.{region}.amazonaws.com",
        f"https://cognito-identity.{region}.amazonaws.com",
        f"https://cognito-idp.{region}.amazonaws.com",
        f"https://*.auth.{region}.amazoncognito.com",
        *extra_connect_sources,
    ]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'", "blob:", "mediastream:"],
        "connect-src": connect,
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", f"https://*.auth.{region}.amazoncognito.com"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())
