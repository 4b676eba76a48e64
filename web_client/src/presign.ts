// The URL for InvokeAgentRuntimeWithWebSocketStream: a browser WebSocket cannot send headers, so the
// SigV4 signature, the session id and the qualifier all travel in the query, signed by the AWS SDK's own
// signer (SignatureV4.presign). AgentCore accepts at most 300 s of life; the socket opens at once.

import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import type { CloudConfig } from "./config";

export const SESSION_PARAMETER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id";
const EXPIRES_IN_SECONDS = 300;

/** wss://bedrock-agentcore.<region>.amazonaws.com, or the configured endpoint as ws(s):// (tests). */
export function websocketEndpoint(config: CloudConfig): URL {
  const url = new URL(config.agentcoreEndpoint ?? `https://bedrock-agentcore.${config.region}.amazonaws.com`);
  url.protocol = url.protocol === "http:" ? "ws:" : "wss:";
  return url;
}

export async function presignedWebSocketUrl(
  config: CloudConfig,
  credentials: AwsCredentialIdentityProvider | AwsCredentialIdentity,
  sessionId: string,
): Promise<string> {
  const endpoint = websocketEndpoint(config);
  const signer = new SignatureV4({
    service: "bedrock-agentcore",
    region: config.region,
    credentials,
    sha256: Sha256,
  });
  const path = `/runtimes/${encodeURIComponent(config.runtimeArn)}/ws`;
  const signed = await signer.presign(
    {
      method: "GET",
      protocol: "https:",
      hostname: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      path,
      query: { qualifier: config.qualifier, [SESSION_PARAMETER]: sessionId },
      headers: { host: endpoint.host },
    },
    { expiresIn: EXPIRES_IN_SECONDS },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
    .join("&");
  return `${endpoint.protocol}//${endpoint.host}${path}?${query}`;
}
