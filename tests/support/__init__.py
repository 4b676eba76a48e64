"""Test helpers shared by the agent, browser and smoke suites (plain Python, no pytest fixtures):
``agent_process`` (``voice-agent`` as a subprocess), ``signals`` (test tones and how to find them in a
recording), ``agentcore_websocket`` (AgentCore's presigned WebSocket, stood in for). The loopback network
the benchmarks use too (coturn, the aiortc caller, the impairment relay) is the ``testbed`` package.
"""
