// Cloud sign-in: Cognito managed login (authorization code + PKCE), tokens in sessionStorage,
// and temporary AWS credentials from the identity pool. No AWS key is ever typed or stored.

import { fromCognitoIdentityPool } from "@aws-sdk/credential-provider-cognito-identity";
import type { AwsCredentialIdentityProvider } from "@aws-sdk/types";
import type { CloudConfig } from "./config";

const TOKENS_KEY = "voice-agent.tokens";
const PKCE_KEY = "voice-agent.pkce";
/** Refresh a little before expiry so a request never leaves with a token about to lapse. */
const EXPIRY_MARGIN_MS = 60_000;

interface Tokens {
  idToken: string;
  accessToken: string;
  refreshToken?: string;
  expiresAt: number;
}

export class SessionExpiredError extends Error {
  constructor() {
    super("Your session has expired. Please sign in again.");
    this.name = "SessionExpiredError";
  }
}

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function randomString(byteCount: number): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function codeChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

/** Where Cognito sends the user back: this page, without query or hash. */
export function redirectUri(): string {
  return `${window.location.origin}${window.location.pathname}`;
}

export class CognitoAuth {
  constructor(private readonly config: CloudConfig) {}

  get signedIn(): boolean {
    return this.readTokens() !== undefined;
  }

  /** The user's name from the id token, for display only (the token is not verified here). */
  get userName(): string | undefined {
    const tokens = this.readTokens();
    if (!tokens) return undefined;
    try {
      const payload = JSON.parse(atob(tokens.idToken.split(".")[1].replaceAll("-", "+").replaceAll("_", "/")));
      return payload.email ?? payload["cognito:username"];
    } catch {
      return undefined;
    }
  }

  async signIn(): Promise<never> {
    const verifier = randomString(48);
    const state = randomString(16);
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
    const params = new URLSearchParams({
      response_type: "code",
      client_id: this.config.userPoolClientId,
      redirect_uri: redirectUri(),
      scope: "openid email profile",
      state,
      code_challenge_method: "S256",
      code_challenge: await codeChallenge(verifier),
    });
    window.location.assign(`${this.config.cognitoDomain}/oauth2/authorize?${params}`);
    return new Promise<never>(() => undefined); // the page is leaving
  }

  /** Completes a redirect back from managed login, if this page load is one. Throws readable errors. */
  async completeSignIn(): Promise<boolean> {
    const url = new URL(window.location.href);
    const code = url.searchParams.get("code");
    const error = url.searchParams.get("error");
    if (!code && !error) return false;
    window.history.replaceState(null, "", redirectUri()); // never leave the code in the address bar
    if (error) {
      throw new Error(`Sign-in did not complete: ${url.searchParams.get("error_description") ?? error}`);
    }
    const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) ?? "null") as { verifier: string; state: string } | null;
    sessionStorage.removeItem(PKCE_KEY);
    if (!saved || saved.state !== url.searchParams.get("state")) {
      throw new Error("Sign-in did not complete (the reply did not match this browser tab). Please sign in again.");
    }
    await this.requestTokens({
      grant_type: "authorization_code",
      code: code!,
      redirect_uri: redirectUri(),
      code_verifier: saved.verifier,
    });
    return true;
  }

  /** A valid id token, refreshed if needed; SessionExpiredError when the user must sign in again. */
  async idToken(): Promise<string> {
    const tokens = this.readTokens();
    if (!tokens) throw new SessionExpiredError();
    if (Date.now() < tokens.expiresAt - EXPIRY_MARGIN_MS) return tokens.idToken;
    if (!tokens.refreshToken) throw this.expire();
    try {
      await this.requestTokens({ grant_type: "refresh_token", refresh_token: tokens.refreshToken });
    } catch {
      throw this.expire();
    }
    return this.readTokens()!.idToken;
  }

  credentials(): AwsCredentialIdentityProvider {
    const { region, userPoolId, identityPoolId } = this.config;
    return fromCognitoIdentityPool({
      clientConfig: { region },
      identityPoolId,
      logins: { [`cognito-idp.${region}.amazonaws.com/${userPoolId}`]: () => this.idToken() },
    });
  }

  signOut(): void {
    sessionStorage.removeItem(TOKENS_KEY);
    sessionStorage.removeItem(PKCE_KEY);
    const params = new URLSearchParams({ client_id: this.config.userPoolClientId, logout_uri: redirectUri() });
    window.location.assign(`${this.config.cognitoDomain}/logout?${params}`);
  }

  private expire(): SessionExpiredError {
    sessionStorage.removeItem(TOKENS_KEY);
    return new SessionExpiredError();
  }

  private readTokens(): Tokens | undefined {
    try {
      const tokens = JSON.parse(sessionStorage.getItem(TOKENS_KEY) ?? "null") as Tokens | null;
      return tokens?.idToken ? tokens : undefined;
    } catch {
      return undefined;
    }
  }

  private async requestTokens(grant: Record<string, string>): Promise<void> {
    const response = await fetch(`${this.config.cognitoDomain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.config.userPoolClientId, ...grant }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || typeof body.id_token !== "string") {
      throw new Error(`Sign-in failed: ${body.error_description ?? body.error ?? `HTTP ${response.status}`}`);
    }
    const previous = this.readTokens();
    const tokens: Tokens = {
      idToken: body.id_token,
      accessToken: body.access_token,
      // A refresh grant returns no new refresh token: keep the old one.
      refreshToken: body.refresh_token ?? previous?.refreshToken,
      expiresAt: Date.now() + Number(body.expires_in ?? 3600) * 1000,
    };
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  }
}
