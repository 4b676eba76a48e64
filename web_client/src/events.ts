// The agent's data channel events, reduced to what the page shows. Pure functions: no DOM.

export type AgentState = "listening" | "agent_speaking" | "interrupted";

export interface TranscriptLine {
  role: "user" | "assistant";
  text: string;
  final: boolean;
}

export interface Conversation {
  agentState?: AgentState;
  transcript: TranscriptLine[];
  /** The last error event's message, for the alert area. */
  error?: string;
}

const AGENT_STATES = new Set<AgentState>(["listening", "agent_speaking", "interrupted"]);

export function emptyConversation(): Conversation {
  return { transcript: [] };
}

/**
 * Applies one event. A non-final transcript replaces the same speaker's previous non-final line
 * (it is a better guess of the same words); a final one settles it. Unknown events are ignored.
 */
export function applyAgentEvent(conversation: Conversation, event: unknown): Conversation {
  if (!event || typeof event !== "object") return conversation;
  const e = event as Record<string, unknown>;
  if (e.type === "state" && AGENT_STATES.has(e.state as AgentState)) {
    return { ...conversation, agentState: e.state as AgentState };
  }
  if (e.type === "transcript" && (e.role === "user" || e.role === "assistant") && typeof e.text === "string") {
    const line: TranscriptLine = { role: e.role, text: e.text, final: e.final === true };
    const transcript = [...conversation.transcript];
    let openIndex = -1;
    for (let i = transcript.length - 1; i >= 0; i--) {
      if (transcript[i].role === line.role && !transcript[i].final) {
        openIndex = i;
        break;
      }
    }
    if (openIndex >= 0) transcript[openIndex] = line;
    else transcript.push(line);
    return { ...conversation, transcript };
  }
  if (e.type === "error") {
    const message = typeof e.message === "string" && e.message ? e.message : "The agent reported an error.";
    return { ...conversation, error: message };
  }
  return conversation;
}
