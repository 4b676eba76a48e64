"""Operations commands for the voice agent: ``voice-agent-smoke`` and ``voice-agent-destroy``."""
