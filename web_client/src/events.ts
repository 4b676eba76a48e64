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
  /** When the voice reported the end of the caller's turn (its final transcript of the caller's words). */
  turnEndedAt?: number;
  /** From the end of the caller's last turn to the agent's first audio after it, in ms. */
  replyDelayMs?: number;
}

const AGENT_STATES = new Set<AgentState>(["listening", "agent_speaking", "interrupted"]);

export function emptyConversation(): Conversation {
  return { transcript: [] };
}

/**
 * Applies one event, received at `now` (ms). A non-final transcript replaces the same speaker's previous
 * non-final line (it is a better guess of the same words); a final one settles it. A final transcript of
 * the caller marks the end of their turn; the next "agent_speaking" gives the reply delay. Unknown events
 * are ignored.
 */
export function applyAgentEvent(conversation: Conversation, event: unknown, now = Date.now()): Conversation {
  if (!event || typeof event !== "object") return conversation;
  const e = event as Record<string, unknown>;
  if (e.type === "state" && AGENT_STATES.has(e.state as AgentState)) {
    const state = e.state as AgentState;
    if (state === "agent_speaking" && conversation.turnEndedAt !== undefined) {
      const replyDelayMs = now - conversation.turnEndedAt;
      return { ...conversation, agentState: state, turnEndedAt: undefined, replyDelayMs };
    }
    return { ...conversation, agentState: state };
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
    const turnEnded = line.role === "user" && line.final;
    return { ...conversation, transcript, ...(turnEnded ? { turnEndedAt: now } : {}) };
  }
  if (e.type === "error") {
    const message = typeof e.message === "string" && e.message ? e.message : "The agent reported an error.";
    return { ...conversation, error: message };
  }
  return conversation;
}
