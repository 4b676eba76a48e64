"""Test helpers shared by the agent, browser, smoke and benchmark suites.

Plain Python (no pytest fixtures here) so bench/ scripts can import them too:
``turn`` (a loopback coturn), ``agent_process`` (``voice-agent`` as a subprocess),
``rtc_client`` (an aiortc caller that sends audio and records what comes back), ``signals``
(test tones and how to find them in a recording).
"""
