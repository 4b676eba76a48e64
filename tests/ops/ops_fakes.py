"""Fakes for the operations tests: a clock that never really sleeps, Stubber-backed AWS clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.stub import Stubber

REGION = "us-east-1"


class FakeClock:
    """A clock whose sleep only moves time forward, so waits of hours take microseconds."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)


@dataclass
class StubbedAws:
    """Real boto3 clients whose HTTP layer is replaced by botocore Stubbers (the real wire shapes)."""

    cloudformation: object
    ec2: object
    logs: object
    stubbers: dict[str, Stubber] = field(default_factory=dict)

    @property
    def cfn(self) -> Stubber:
        return self.stubbers["cloudformation"]

    @property
    def ec2_stub(self) -> Stubber:
        return self.stubbers["ec2"]

    @property
    def logs_stub(self) -> Stubber:
        return self.stubbers["logs"]
