"""A WebRTC voice agent for Amazon Bedrock AgentCore Runtime."""
