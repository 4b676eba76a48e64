import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "../src/config";
import { closedUrl, json, serve, type TestServer } from "./http_server";

const CLOUD = {
  mode: "cloud",
  region: "eu-west-1",
  runtimeArn: "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/voice_agent-abc",
  userPoolId: "eu-west-1_pool",
  userPoolClientId: "client",
  identityPoolId: "eu-west-1:identity-pool",
  cognitoDomain: "https://voice.auth.eu-west-1.amazoncognito.com",
};

function without(key: string): Record<string, unknown> {
  const { [key]: _, ...rest } = CLOUD as Record<string, unknown>;
  return rest;
}

describe("local mode", () => {
  it("takes the agent URL without its trailing slashes", () => {
    expect(parseConfig({ mode: "local", agentUrl: "http://127.0.0.1:8080//" })).toEqual({
      mode: "local", agentUrl: "http://127.0.0.1:8080", relayOnly: false,
    });
  });

  it("honours relayOnly", () => {
    expect(parseConfig({ mode: "local", agentUrl: "http://127.0.0.1:8080", relayOnly: true }).relayOnly).toBe(true);
  });

  it("needs the agent URL", () => {
    expect(() => parseConfig({ mode: "local" })).toThrow('config.json: "agentUrl" must be a non-empty string');
  });
});

describe("cloud mode", () => {
  it("defaults to the DEFAULT qualifier and relay-only media", () => {
    expect(parseConfig(CLOUD)).toMatchObject({ mode: "cloud", qualifier: "DEFAULT", relayOnly: true });
  });

  it("takes a configured qualifier", () => {
    expect(parseConfig({ ...CLOUD, qualifier: "live" })).toMatchObject({ qualifier: "live" });
  });

  it("takes the Cognito domain without its trailing slash", () => {
    expect(parseConfig({ ...CLOUD, cognitoDomain: `${CLOUD.cognitoDomain}/` }))
      .toMatchObject({ cognitoDomain: CLOUD.cognitoDomain });
  });

  it("takes an AgentCore endpoint override", () => {
    expect(parseConfig({ ...CLOUD, agentcoreEndpoint: "http://127.0.0.1:9000" }))
      .toMatchObject({ agentcoreEndpoint: "http://127.0.0.1:9000" });
  });

  it.each(["region", "runtimeArn", "userPoolId", "userPoolClientId", "identityPoolId", "cognitoDomain"])(
    "names the missing key %s",
    (key) => {
      expect(() => parseConfig(without(key))).toThrow(`config.json: "${key}" must be a non-empty string`);
    },
  );

  it("refuses an empty value, naming its key", () => {
    expect(() => parseConfig({ ...CLOUD, region: "" })).toThrow('"region" must be a non-empty string');
  });

  it("refuses a relayOnly that is not a boolean", () => {
    expect(() => parseConfig({ ...CLOUD, relayOnly: "false" })).toThrow('"relayOnly" must be true or false');
  });

  it("refuses an AgentCore endpoint that is not a string", () => {
    expect(() => parseConfig({ ...CLOUD, agentcoreEndpoint: 9000 }))
      .toThrow('"agentcoreEndpoint" must be a URL string');
  });
});

describe("the mode", () => {
  it.each([["missing", {}], ["unknown", { mode: "hybrid" }]])("is required: %s", (_, raw) => {
    expect(() => parseConfig(raw)).toThrow('config.json: "mode" must be "local" or "cloud"');
  });

  it.each([["null", null], ["a string", "local"], ["a number", 1]])("needs an object, not %s", (_, raw) => {
    expect(() => parseConfig(raw)).toThrow(new ConfigError("config.json must hold a JSON object"));
  });
});

describe("loading config.json", () => {
  let server: TestServer | undefined;
  afterEach(() => server?.close());

  it("parses what the web server serves", async () => {
    server = await serve(() => json(200, { mode: "local", agentUrl: "http://127.0.0.1:8080" }));
    await expect(loadConfig(`${server.url}/config.json`)).resolves.toMatchObject({ mode: "local" });
  });

  it("asks past the browser cache, so a redeploy's config is seen at once", async () => {
    server = await serve(() => json(200, { mode: "local", agentUrl: "http://127.0.0.1:8080" }));
    await loadConfig(`${server.url}/config.json`);
    expect(server.requests[0].headers["cache-control"]).toBe("no-cache");
  });

  it("reports the HTTP status of a failed load", async () => {
    server = await serve(() => ({ status: 404 }));
    await expect(loadConfig(`${server.url}/config.json`))
      .rejects.toThrow(new ConfigError("Could not load config.json (HTTP 404)."));
  });

  it("reports a body that is not JSON", async () => {
    server = await serve(() => ({ status: 200, body: "<html>" }));
    await expect(loadConfig(`${server.url}/config.json`))
      .rejects.toThrow(new ConfigError("config.json is not valid JSON."));
  });

  it("reports a web server that does not answer", async () => {
    await expect(loadConfig(`${await closedUrl()}/config.json`))
      .rejects.toThrow(new ConfigError("Could not load config.json: the web server did not answer."));
  });

  it("reports a bad setting in the served file", async () => {
    server = await serve(() => json(200, { mode: "cloud" }));
    await expect(loadConfig(`${server.url}/config.json`)).rejects.toThrow('"region" must be a non-empty string');
  });
});
