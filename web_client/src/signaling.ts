// Signaling requests: one `invoke(action, data)` per request, carried either by plain fetch to a
// local agent or by InvokeAgentRuntime (SigV4) in the cloud. Both raise SignalingError.

import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import { BedrockAgentCoreClient, InvokeAgentRuntimeCommand } from "@aws-sdk/client-bedrock-agentcore";
import type { CloudConfig } from "./config";

export type Action = "ice_config" | "offer" | "ice_candidate" | "disconnect";

export class SignalingError extends Error {
  constructor(
    message: string,
    /** The agent's error code, or a client-side one (network, expired_session, ...). */
    readonly code: string,
    /** True when a new attempt (new session) may succeed: network failures, 5xx, capacity. */
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = "SignalingError";
  }
}

export interface Signaling {
  /** `signal` abandons the request (an offer that outlived the connect deadline). */
  invoke(action: Action, data: Record<string, unknown>, sessionId: string, signal?: AbortSignal): Promise<any>;
  /** Best effort while the page unloads: must not wait for an answer. */
  invokeOnUnload(action: Action, data: Record<string, unknown>, sessionId: string): void;
}

function agentErrorMessage(body: unknown): { code?: string; message?: string } {
  if (body && typeof body === "object" && "error" in body) {
    const error = (body as { error: unknown }).error;
    if (error && typeof error === "object") {
      const { code, message } = error as { code?: unknown; message?: unknown };
      return {
        code: typeof code === "string" ? code : undefined,
        message: typeof message === "string" ? message : undefined,
      };
    }
  }
  return {};
}

/** For a reply from the agent itself: its 4xx mean a bad request, which a new attempt repeats. */
function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * AgentCore's own errors (REST-JSON: error type in x-amzn-errortype, a body with "message") that a new
 * attempt on a new session may not meet. A container that fails or answers badly surfaces as HTTP 424
 * RuntimeClientError (Failed Dependency), not as the container's own status.
 */
const RETRYABLE_SERVICE_ERRORS = new Set([
  "RuntimeClientError", "InternalServerException", "ThrottlingException", "RetryableConflictException",
  "ServiceUnavailableException",
]);
const FAILED_DEPENDENCY = 424;

function isRetryableServiceError(name: string | undefined, status: number): boolean {
  return (name !== undefined && RETRYABLE_SERVICE_ERRORS.has(name)) ||
    status === FAILED_DEPENDENCY || isRetryableStatus(status);
}

/** Local mode: the agent's own HTTP endpoint, no authentication. */
export class LocalSignaling implements Signaling {
  constructor(private readonly agentUrl: string) {}

  // The session id means nothing to a local agent (one process holds every call), so it is not sent.
  async invoke(
    action: Action, data: Record<string, unknown>, _sessionId: string, signal?: AbortSignal,
  ): Promise<any> {
    let response: Response;
    try {
      response = await fetch(`${this.agentUrl}/invocations`, {
        method: "POST",
        signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action, data }),
      });
    } catch (error) {
      if (signal?.aborted) throw new SignalingError("The agent did not answer in time.", "timeout", true);
      throw new SignalingError(
        `Cannot reach the agent at ${this.agentUrl}. Is it running?`, "network", true);
    }
    const body = await response.json().catch(() => undefined);
    if (!response.ok) {
      const { code, message } = agentErrorMessage(body);
      throw new SignalingError(
        message ?? `The agent answered HTTP ${response.status}.`,
        code ?? `http_${response.status}`,
        isRetryableStatus(response.status),
        response.status,
      );
    }
    return body;
  }

  invokeOnUnload(action: Action, data: Record<string, unknown>, _sessionId: string): void {
    // A beacon outlives the page. As text/plain it is a CORS "simple" request: no preflight round
    // trip, so it usually reaches the agent before the closing peer connection does (the agent
    // reads the JSON body whatever its content type).
    const body = new Blob([JSON.stringify({ action, data })], { type: "text/plain" });
    if (!navigator.sendBeacon(`${this.agentUrl}/invocations`, body)) {
      void fetch(`${this.agentUrl}/invocations`, {
        method: "POST", keepalive: true, headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action, data }),
      }).catch(() => undefined);
    }
  }
}

/** Cloud mode: InvokeAgentRuntime signed with temporary credentials from the identity pool. */
export class CloudSignaling implements Signaling {
  private readonly client: BedrockAgentCoreClient;
  /** Same, but its requests use fetch keepalive, so one sent while the page unloads still leaves. */
  private readonly unloadClient: BedrockAgentCoreClient;
  /** The identity-pool credentials, cached once for every request (and the WebSocket's presigning). */
  readonly credentials: AwsCredentialIdentityProvider;

  constructor(
    private readonly config: CloudConfig,
    credentials: AwsCredentialIdentityProvider | AwsCredentialIdentity,
  ) {
    this.credentials = sharedCredentials(credentials);
    const settings = {
      region: config.region,
      credentials: this.credentials,
      ...(config.agentcoreEndpoint ? { endpoint: config.agentcoreEndpoint } : {}),
      maxAttempts: 1, // a failed offer is retried by the call with a new session, not by the SDK
    };
    this.client = new BedrockAgentCoreClient(settings);
    this.unloadClient = new BedrockAgentCoreClient({ ...settings, requestHandler: { keepAlive: true } });
  }

  invoke(action: Action, data: Record<string, unknown>, sessionId: string, signal?: AbortSignal): Promise<any> {
    return this.send(this.client, action, data, sessionId, signal);
  }

  invokeOnUnload(action: Action, data: Record<string, unknown>, sessionId: string): void {
    // Signing is asynchronous, so this may still not leave before the page goes; the agent's audio
    // timeout frees the call if it does not.
    void this.send(this.unloadClient, action, data, sessionId).catch(() => undefined);
  }

  private async send(
    client: BedrockAgentCoreClient, action: Action, data: Record<string, unknown>, sessionId: string,
    signal?: AbortSignal,
  ): Promise<any> {
    const command = new InvokeAgentRuntimeCommand({
      agentRuntimeArn: this.config.runtimeArn,
      qualifier: this.config.qualifier,
      runtimeSessionId: sessionId,
      contentType: "application/json",
      accept: "application/json",
      payload: new TextEncoder().encode(JSON.stringify({ action, data })),
    });
    try {
      const output = await client.send(command, { abortSignal: signal });
      const text = output.response ? await output.response.transformToString() : "";
      return text ? JSON.parse(text) : {};
    } catch (error) {
      if (signal?.aborted) throw new SignalingError("The agent did not answer in time.", "timeout", true);
      throw toSignalingError(error);
    }
  }

}

/** Refresh identity-pool credentials this long before they expire. */
const CREDENTIAL_REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * One credential cache for both clients, so a request sent while the page unloads signs at once
 * instead of first asking the identity pool for credentials of its own.
 */
export function sharedCredentials(
  source: AwsCredentialIdentityProvider | AwsCredentialIdentity,
): AwsCredentialIdentityProvider {
  if (typeof source !== "function") return async () => source;
  let cached: Promise<AwsCredentialIdentity> | undefined;
  const fetchFresh = () => {
    const pending = source();
    cached = pending;
    pending.catch(() => {
      if (cached === pending) cached = undefined; // a failure is not cached: the next call retries
    });
    return pending;
  };
  return async () => {
    const credentials = await (cached ?? fetchFresh());
    const expiresAt = credentials.expiration?.getTime();
    if (expiresAt !== undefined && expiresAt - Date.now() < CREDENTIAL_REFRESH_MARGIN_MS) return fetchFresh();
    return credentials;
  };
}

const EXPIRED_NAMES = new Set([
  "ExpiredTokenException", "NotAuthorizedException", "UnrecognizedClientException",
  "InvalidSignatureException", "ExpiredToken", "TokenRefreshRequired",
]);

export function toSignalingError(error: unknown): SignalingError {
  if (error instanceof SignalingError) return error;
  const e = error as {
    name?: string; message?: string; error?: unknown;
    $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
  // SessionExpiredError comes from our own token provider, through the SDK's credential chain.
  const cause = (error as { cause?: { name?: string } })?.cause;
  if (e?.name === "SessionExpiredError" || cause?.name === "SessionExpiredError" ||
      (e?.name && EXPIRED_NAMES.has(e.name))) {
    return new SignalingError(
      "Your session has expired. Please sign in again.", "expired_session", false, status);
  }
  // The agent's JSON error body ({"error": {...}}) is copied onto the SDK error by the deserializer.
  // Its 4xx stay final: the agent has judged the request itself.
  const agent = agentErrorMessage(e);
  if (agent.message) {
    return new SignalingError(agent.message, agent.code ?? "agent_error",
      status !== undefined && isRetryableStatus(status), status);
  }
  if (status === undefined) {
    return new SignalingError(
      "Cannot reach the voice agent service. Check your connection and try again.", "network", true);
  }
  if (status === 403) {
    return new SignalingError(
      "You are not allowed to call this agent. Try signing in again.", "forbidden", false, status);
  }
  if (e?.name === "RuntimeClientError" || status === FAILED_DEPENDENCY) {
    // AgentCore's message names logs the user cannot see; say what happened instead.
    return new SignalingError(
      "The voice agent failed to answer. Please try again in a moment.",
      e?.name ?? `http_${status}`, true, status);
  }
  // AWS's own error text (quotas, parameter names, request ids) is not for callers: a fixed message
  // by kind, the error's name as the code, and the detail in the browser console.
  console.warn("voice agent service error", e?.name, status, e?.message);
  const retryable = isRetryableServiceError(e?.name, status);
  return new SignalingError(
    retryable
      ? `The voice agent service is busy (HTTP ${status}). Please try again in a moment.`
      : `The voice agent service refused the request (HTTP ${status}).`,
    e?.name ?? `http_${status}`, retryable, status);
}
