"""The voice agent's infrastructure: one module per concern, assembled per stage by `stage.py`."""
