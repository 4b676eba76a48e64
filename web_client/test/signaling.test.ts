import { afterEach, describe, expect, it, vi } from "vitest";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import { SessionExpiredError } from "../src/auth";
import type { CloudConfig } from "../src/config";
import { CloudSignaling, LocalSignaling, SignalingError, sharedCredentials } from "../src/signaling";
import { closedUrl, json, serve, type Reply, type TestServer } from "./http_server";

const SESSION_ID = "call-0123456789abcdef0123456789abcdef-lq2x3y4z";
const SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id";
const RUNTIME_ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/voice_agent-abc";
const CREDENTIALS: AwsCredentialIdentity = {
  accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token",
};
const ICE_UNAVAILABLE = "TURN credentials are unavailable right now; try again";

/** The agent's own error body, as its signaling API sends it. */
const agentError = (status: number, code: string, message: string) =>
  json(status, { error: { code, message, id: "err-1" } });

/** One of AgentCore's own REST-JSON errors. */
const serviceError = (status: number, type: string, message: string) =>
  json(status, { message }, { "x-amzn-errortype": type });

/** The SignalingError a request failed with (and a test failure if it succeeded). */
async function failure(request: Promise<unknown>): Promise<SignalingError> {
  const error = await request.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(SignalingError);
  return error as SignalingError;
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  vi.unstubAllGlobals();
});

/** The local agent itself, answering every request with `reply` (undefined: never answering). */
async function agent(reply: Reply | undefined): Promise<LocalSignaling> {
  server = await serve(() => reply);
  return new LocalSignaling(server.url);
}

/** A stand-in for the AgentCore data plane that answers every request with `reply`. */
async function agentcore(
  reply: Reply,
  { qualifier = "DEFAULT", credentials = CREDENTIALS as AwsCredentialIdentityProvider | AwsCredentialIdentity } = {},
): Promise<CloudSignaling> {
  server = await serve(() => reply);
  const config: CloudConfig = {
    mode: "cloud", region: "eu-west-1", runtimeArn: RUNTIME_ARN, qualifier,
    userPoolId: "pool", userPoolClientId: "client", identityPoolId: "identity", cognitoDomain: "https://auth",
    relayOnly: true, agentcoreEndpoint: server.url,
  };
  return new CloudSignaling(config, credentials);
}

// AgentCore relays the container's status and body, so both transports must read the agent's errors alike.
describe.each([
  ["local", agent],
  ["cloud", agentcore],
])("the agent's own error answers over %s signaling", (_, signalingFor) => {
  it("a 503 ice_unavailable is retryable and shows the agent's message", async () => {
    const signaling = await signalingFor(agentError(503, "ice_unavailable", ICE_UNAVAILABLE));
    expect(await failure(signaling.invoke("ice_config", {}, SESSION_ID)))
      .toMatchObject({ code: "ice_unavailable", status: 503, retryable: true, message: ICE_UNAVAILABLE });
  });

  it("a 4xx is final: a new attempt would repeat the bad request", async () => {
    const signaling = await signalingFor(agentError(400, "bad_offer", "the offer has no audio"));
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID)))
      .toMatchObject({ code: "bad_offer", status: 400, retryable: false, message: "the offer has no audio" });
  });
});

describe("local signaling", () => {
  it("posts the action and its data as JSON to /invocations and returns the reply", async () => {
    const signaling = await agent(json(200, { iceServers: [] }));
    await expect(signaling.invoke("ice_config", { a: 1 }, SESSION_ID)).resolves.toEqual({ iceServers: [] });
    const [request] = server!.requests;
    expect(request).toMatchObject({ method: "POST", url: "/invocations" });
    expect(request.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request.body)).toEqual({ action: "ice_config", data: { a: 1 } });
  });

  it("sends no session id: one local process holds every call", async () => {
    const signaling = await agent(json(200, {}));
    await signaling.invoke("ice_config", {}, SESSION_ID);
    expect(server!.requests[0].headers).not.toHaveProperty(SESSION_HEADER);
  });

  it.each([408, 429])("reports HTTP %i as retryable", async (status) => {
    const signaling = await agent(agentError(status, "busy", "busy"));
    expect((await failure(signaling.invoke("offer", {}, SESSION_ID))).retryable).toBe(true);
  });

  it("names the HTTP status when the error has no agent body", async () => {
    const signaling = await agent({ status: 502, body: "Bad Gateway" });
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID)))
      .toMatchObject({ code: "http_502", status: 502, retryable: true, message: "The agent answered HTTP 502." });
  });

  it("says where it looked when no agent listens", async () => {
    const url = await closedUrl();
    expect(await failure(new LocalSignaling(url).invoke("ice_config", {}, SESSION_ID)))
      .toMatchObject({ code: "network", retryable: true, message: `Cannot reach the agent at ${url}. Is it running?` });
  });

  it("reports an abandoned request as a timeout", async () => {
    const signaling = await agent(undefined);
    const abandon = new AbortController();
    const pending = signaling.invoke("offer", {}, SESSION_ID, abandon.signal);
    await vi.waitFor(() => expect(server!.requests).toHaveLength(1));
    abandon.abort();
    expect(await failure(pending)).toMatchObject({ code: "timeout", retryable: true });
  });

  it("hands the disconnect sent while the page unloads to the browser's beacon, as text/plain", async () => {
    const sendBeacon = vi.fn((_url: string, _body: Blob) => true);
    vi.stubGlobal("navigator", { sendBeacon });
    new LocalSignaling("http://127.0.0.1:8080").invokeOnUnload("disconnect", { pc_id: "pc-1" }, SESSION_ID);
    const [url, body] = sendBeacon.mock.calls[0];
    expect(url).toBe("http://127.0.0.1:8080/invocations");
    expect(body.type).toBe("text/plain");
    expect(JSON.parse(await body.text())).toEqual({ action: "disconnect", data: { pc_id: "pc-1" } });
  });

  it("posts the disconnect itself when the browser refuses the beacon", async () => {
    vi.stubGlobal("navigator", { sendBeacon: () => false });
    const signaling = await agent(json(200, {}));
    signaling.invokeOnUnload("disconnect", { pc_id: "pc-1" }, SESSION_ID);
    await vi.waitFor(() => expect(server!.requests).toHaveLength(1));
    expect(JSON.parse(server!.requests[0].body)).toEqual({ action: "disconnect", data: { pc_id: "pc-1" } });
  });
});

describe("cloud signaling (InvokeAgentRuntime)", () => {
  it("posts to the runtime's invocations path with the qualifier", async () => {
    const signaling = await agentcore(json(200, {}), { qualifier: "live" });
    await signaling.invoke("ice_config", {}, SESSION_ID);
    expect(server!.requests[0]).toMatchObject({
      method: "POST", url: `/runtimes/${encodeURIComponent(RUNTIME_ARN)}/invocations?qualifier=live`,
    });
  });

  it("carries the session id in the header AgentCore routes by", async () => {
    const signaling = await agentcore(json(200, {}));
    await signaling.invoke("ice_config", {}, SESSION_ID);
    expect(server!.requests[0].headers[SESSION_HEADER]).toBe(SESSION_ID);
  });

  it("signs the request with SigV4 for bedrock-agentcore in the configured region", async () => {
    const signaling = await agentcore(json(200, {}));
    await signaling.invoke("ice_config", {}, SESSION_ID);
    const { authorization, "x-amz-security-token": token } = server!.requests[0].headers;
    expect(authorization)
      .toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/bedrock-agentcore\/aws4_request,/);
    expect(token).toBe("token");
  });

  it("sends the action and its data as the JSON payload and returns the agent's reply", async () => {
    const signaling = await agentcore(json(200, { sdp: "v=0", pc_id: "pc-1" }));
    await expect(signaling.invoke("offer", { sdp: "v=0" }, SESSION_ID)).resolves.toEqual({ sdp: "v=0", pc_id: "pc-1" });
    expect(JSON.parse(server!.requests[0].body)).toEqual({ action: "offer", data: { sdp: "v=0" } });
  });

  it("returns an empty object for an empty reply", async () => {
    const signaling = await agentcore({ status: 200, headers: { "Content-Type": "application/json" } });
    await expect(signaling.invoke("disconnect", { pc_id: "pc-1" }, SESSION_ID)).resolves.toEqual({});
  });

  it("says a failed container failed, without AgentCore's text about logs", async () => {
    const signaling = await agentcore(serviceError(424, "RuntimeClientError",
      "Received error (500) from runtime. Please check your CloudWatch logs for more information."));
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
      code: "RuntimeClientError", status: 424, retryable: true,
      message: "The voice agent failed to answer. Please try again in a moment.",
    });
  });

  it("reports a refused caller as forbidden, without AWS's text", async () => {
    const signaling = await agentcore(serviceError(403, "AccessDeniedException",
      "User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: " +
      "bedrock-agentcore:InvokeAgentRuntime"));
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
      code: "forbidden", status: 403, retryable: false,
      message: "You are not allowed to call this agent. Try signing in again.",
    });
  });

  it.each(["ExpiredTokenException", "InvalidSignatureException", "UnrecognizedClientException"])(
    "asks the user to sign in again after %s", async (type) => {
      const signaling = await agentcore(serviceError(403, type, "The security token is invalid"));
      expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
        code: "expired_session", retryable: false, message: "Your session has expired. Please sign in again.",
      });
    });

  it("asks the user to sign in again when the sign-in token provider has expired", async () => {
    const signaling = await agentcore(json(200, {}), { credentials: () => Promise.reject(new SessionExpiredError()) });
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID)))
      .toMatchObject({ code: "expired_session", retryable: false });
    expect(server!.requests).toHaveLength(0);
  });

  it.each([
    [429, "ThrottlingException"], [503, "ServiceUnavailableException"], [500, "InternalServerException"],
  ])("reports AgentCore's %i %s as retryable on a new session", async (status, type) => {
    const signaling = await agentcore(serviceError(status, type, "Rate exceeded"));
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
      code: type, status, retryable: true,
      message: `The voice agent service is busy (HTTP ${status}). Please try again in a moment.`,
    });
  });

  it("reports AgentCore's validation error as final, without AWS's text", async () => {
    const signaling = await agentcore(serviceError(400, "ValidationException", "runtimeSessionId is too short"));
    const error = await failure(signaling.invoke("offer", {}, SESSION_ID));
    expect(error).toMatchObject({
      code: "ValidationException", status: 400, retryable: false,
      message: "The voice agent service refused the request (HTTP 400).",
    });
    expect(error.message).not.toContain("runtimeSessionId");
  });

  it("names the HTTP status of an error with neither type nor message", async () => {
    const signaling = await agentcore({ status: 500 });
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
      status: 500, retryable: true,
      message: "The voice agent service is busy (HTTP 500). Please try again in a moment.",
    });
  });

  it("reports an unreachable service as a network failure to retry", async () => {
    const signaling = await agentcore(json(200, {}));
    await server!.close();
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID))).toMatchObject({
      code: "network", retryable: true,
      message: "Cannot reach the voice agent service. Check your connection and try again.",
    });
  });

  it("reports an abandoned request as a timeout", async () => {
    const signaling = await agentcore(json(200, {}));
    const abandon = new AbortController();
    abandon.abort();
    expect(await failure(signaling.invoke("offer", {}, SESSION_ID, abandon.signal)))
      .toMatchObject({ code: "timeout", retryable: true });
  });
});

describe("shared credentials", () => {
  afterEach(() => vi.useRealTimers());
  const expiringIn = (ms: number): AwsCredentialIdentity => ({ ...CREDENTIALS, expiration: new Date(Date.now() + ms) });

  it("ask the identity pool once for every request while they are fresh", async () => {
    const source = vi.fn(async () => expiringIn(60 * 60_000));
    const credentials = sharedCredentials(source);
    await credentials();
    await credentials();
    expect(source).toHaveBeenCalledTimes(1);
  });

  it("are fetched again within five minutes of expiry", async () => {
    vi.useFakeTimers({ now: 0 });
    const source = vi.fn(async () => expiringIn(60 * 60_000));
    const credentials = sharedCredentials(source);
    await credentials();
    vi.setSystemTime(56 * 60_000);
    await credentials();
    expect(source).toHaveBeenCalledTimes(2);
  });

  it("do not keep a failure: the next request asks again", async () => {
    const source = vi.fn()
      .mockRejectedValueOnce(new Error("identity pool unreachable"))
      .mockResolvedValueOnce(expiringIn(60 * 60_000));
    const credentials = sharedCredentials(source);
    await expect(credentials()).rejects.toThrow("identity pool unreachable");
    await expect(credentials()).resolves.toMatchObject({ accessKeyId: "AKIDEXAMPLE" });
  });

  it("serve fixed credentials as they are", async () => {
    await expect(sharedCredentials(CREDENTIALS)()).resolves.toBe(CREDENTIALS);
  });
});
