import { describe, expect, it } from "vitest";
import { applyAgentEvent, emptyConversation, type Conversation } from "../src/events";

/** Applies each event in turn, all received at `now`. */
function applyAll(events: unknown[], now = 0, start: Conversation = emptyConversation()): Conversation {
  return events.reduce<Conversation>((conversation, event) => applyAgentEvent(conversation, event, now), start);
}

const transcript = (role: string, text: string, final = false) => ({ type: "transcript", role, text, final });

describe("state events", () => {
  it.each(["listening", "agent_speaking", "interrupted"])("set the agent state to %s", (state) => {
    expect(applyAll([{ type: "state", state }]).agentState).toBe(state);
  });

  it("ignore a state the page does not know", () => {
    const before = applyAll([{ type: "state", state: "listening" }]);
    expect(applyAgentEvent(before, { type: "state", state: "thinking" })).toBe(before);
  });
});

describe("transcript events", () => {
  it("add a line for a speaker", () => {
    expect(applyAll([transcript("user", "hello")]).transcript).toEqual([
      { role: "user", text: "hello", final: false },
    ]);
  });

  it("replace the same speaker's open line while it is not final", () => {
    const conversation = applyAll([transcript("user", "hel"), transcript("user", "hello there")]);
    expect(conversation.transcript).toEqual([{ role: "user", text: "hello there", final: false }]);
  });

  it("settle the open line with the final text", () => {
    const conversation = applyAll([transcript("user", "hel"), transcript("user", "hello", true)]);
    expect(conversation.transcript).toEqual([{ role: "user", text: "hello", final: true }]);
  });

  it("start a new line after a final one", () => {
    const conversation = applyAll([transcript("user", "hello", true), transcript("user", "again")]);
    expect(conversation.transcript.map((line) => line.text)).toEqual(["hello", "again"]);
  });

  it("leave the other speaker's open line in place", () => {
    const conversation = applyAll([
      transcript("user", "what is"), transcript("assistant", "Let me"), transcript("user", "what is the time"),
    ]);
    expect(conversation.transcript).toEqual([
      { role: "user", text: "what is the time", final: false },
      { role: "assistant", text: "Let me", final: false },
    ]);
  });

  it("count only final: true as final", () => {
    const conversation = applyAll([{ type: "transcript", role: "user", text: "hi", final: "yes" }]);
    expect(conversation.transcript[0].final).toBe(false);
  });

  it.each([
    ["an unknown role", { type: "transcript", role: "system", text: "hi" }],
    ["no text", { type: "transcript", role: "user" }],
    ["text that is not a string", { type: "transcript", role: "user", text: 42 }],
  ])("are ignored with %s", (_, event) => {
    const before = emptyConversation();
    expect(applyAgentEvent(before, event)).toBe(before);
  });

  it("leave the conversation they were applied to unchanged", () => {
    const before = applyAll([transcript("user", "hel")]);
    applyAgentEvent(before, transcript("user", "hello", true));
    expect(before.transcript).toEqual([{ role: "user", text: "hel", final: false }]);
  });
});

describe("reply delay", () => {
  it("runs from the caller's final transcript to the agent's next speech", () => {
    const ended = applyAll([transcript("user", "hello", true)], 1_000);
    const replying = applyAgentEvent(ended, { type: "state", state: "agent_speaking" }, 1_750);
    expect(replying.replyDelayMs).toBe(750);
  });

  it("is measured once per turn", () => {
    const ended = applyAll([transcript("user", "hello", true)], 1_000);
    const first = applyAgentEvent(ended, { type: "state", state: "agent_speaking" }, 1_750);
    const again = applyAgentEvent(first, { type: "state", state: "agent_speaking" }, 9_000);
    expect(again.replyDelayMs).toBe(750);
  });

  it("is not started by the caller's interim transcript", () => {
    const speaking = applyAll([transcript("user", "hel"), { type: "state", state: "agent_speaking" }]);
    expect(speaking.replyDelayMs).toBeUndefined();
  });

  it("is not started by the agent's own final transcript", () => {
    const speaking = applyAll([transcript("assistant", "Hi!", true), { type: "state", state: "agent_speaking" }]);
    expect(speaking.replyDelayMs).toBeUndefined();
  });
});

describe("error events", () => {
  it("show the agent's message", () => {
    expect(applyAll([{ type: "error", message: "The voice stopped." }]).error).toBe("The voice stopped.");
  });

  it.each([
    ["no message", { type: "error" }],
    ["an empty message", { type: "error", message: "" }],
    ["a message that is not text", { type: "error", message: { code: 1 } }],
  ])("with %s show a generic message", (_, event) => {
    expect(applyAll([event]).error).toBe("The agent reported an error.");
  });
});

describe("other input", () => {
  it.each([
    ["an unknown event type", { type: "usage", tokens: 12 }],
    ["an object without a type", { state: "listening" }],
    ["null", null],
    ["a string", "state"],
    ["a number", 7],
  ])("is ignored: %s", (_, event) => {
    const before = applyAll([{ type: "state", state: "listening" }]);
    expect(applyAgentEvent(before, event)).toBe(before);
  });
});
