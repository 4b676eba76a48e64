"""The loopback coturn lives in testbed.turn; this name stays for the smoke tests still importing it."""

from testbed.turn import TurnServer, TurnServerUnavailable

__all__ = ["TurnServer", "TurnServerUnavailable"]
