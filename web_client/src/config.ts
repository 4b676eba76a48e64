// The deploy (or `make up`) writes config.json next to index.html; it alone decides the mode.

export interface LocalConfig {
  mode: "local";
  agentUrl: string;
  relayOnly: boolean;
}

export interface CloudConfig {
  mode: "cloud";
  region: string;
  runtimeArn: string;
  qualifier: string;
  userPoolId: string;
  userPoolClientId: string;
  identityPoolId: string;
  cognitoDomain: string;
  relayOnly: boolean;
  /** Overrides the AgentCore data-plane URL (tests point it at a stand-in). */
  agentcoreEndpoint?: string;
}

export type AppConfig = LocalConfig | CloudConfig;

export class ConfigError extends Error {}

function requireString(raw: Record<string, unknown>, key: string): string {
  const value = raw[key];
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(`config.json: "${key}" must be a non-empty string`);
  }
  return value;
}

function optionalBoolean(raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new ConfigError(`config.json: "${key}" must be true or false`);
  return value;
}

export function parseConfig(raw: unknown): AppConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json must hold a JSON object");
  const obj = raw as Record<string, unknown>;
  if (obj.mode === "local") {
    return {
      mode: "local",
      agentUrl: requireString(obj, "agentUrl").replace(/\/+$/, ""),
      relayOnly: optionalBoolean(obj, "relayOnly", false),
    };
  }
  if (obj.mode === "cloud") {
    const endpoint = obj.agentcoreEndpoint;
    if (endpoint !== undefined && typeof endpoint !== "string") {
      throw new ConfigError('config.json: "agentcoreEndpoint" must be a URL string');
    }
    return {
      mode: "cloud",
      region: requireString(obj, "region"),
      runtimeArn: requireString(obj, "runtimeArn"),
      qualifier: typeof obj.qualifier === "string" && obj.qualifier ? obj.qualifier : "DEFAULT",
      userPoolId: requireString(obj, "userPoolId"),
      userPoolClientId: requireString(obj, "userPoolClientId"),
      identityPoolId: requireString(obj, "identityPoolId"),
      cognitoDomain: requireString(obj, "cognitoDomain").replace(/\/+$/, ""),
      relayOnly: optionalBoolean(obj, "relayOnly", true),
      agentcoreEndpoint: endpoint,
    };
  }
  throw new ConfigError('config.json: "mode" must be "local" or "cloud"');
}

export async function loadConfig(url = "config.json"): Promise<AppConfig> {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new ConfigError("Could not load config.json: the web server did not answer.");
  }
  if (!response.ok) throw new ConfigError(`Could not load config.json (HTTP ${response.status}).`);
  let raw: unknown;
  try {
    raw = await response.json();
  } catch {
    throw new ConfigError("config.json is not valid JSON.");
  }
  return parseConfig(raw);
}
