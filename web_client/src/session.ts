// AgentCore routes every request carrying one runtimeSessionId to one microVM, and needs >= 33 chars.

export const MIN_SESSION_ID_LENGTH = 33;

/** A fresh id per call attempt: "call-" + a UUID without dashes + a timestamp, 50 chars. */
export function newRuntimeSessionId(): string {
  const id = `call-${crypto.randomUUID().replaceAll("-", "")}-${Date.now().toString(36)}`;
  if (id.length < MIN_SESSION_ID_LENGTH) throw new Error("session id too short"); // cannot happen; guards edits
  return id;
}
