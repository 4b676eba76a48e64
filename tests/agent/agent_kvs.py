"""Kinesis Video Streams behind real boto3 clients, with its per-channel quotas.

botocore's own clients validate every request against the service model; the answers come at the
`before-call` seam (where botocore's Stubber answers too), are computed from the request and validated
against the operation's output shape. KVS's limits are enforced per channel: 5 DescribeSignalingChannel
and 5 GetIceServerConfig requests in any one second (ClientLimitExceededException beyond), and 50 TURN
allocations, which the TURN side of a call takes with the username of the credentials it was given.
Time is the injected clock's, so traffic of minutes runs in seconds.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

REGION = "us-west-2"
ACCOUNT = "123456789012"
ENDPOINT = "https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com"
REQUESTS_PER_SECOND_PER_CHANNEL = 5
ALLOCATIONS_PER_CHANNEL = 50
PER_CHANNEL_OPERATIONS = ("DescribeSignalingChannel", "GetIceServerConfig")


class ManualClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class QuotaKvs:
    """The signaling channels `channel_names`, as CloudFormation would have created them."""

    def __init__(self, channel_names: Sequence[str], clock: Callable[[], float]) -> None:
        self._clock = clock
        self.arns = {
            name: f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/{1_700_000_000_000 + n}"
            for n, name in enumerate(channel_names)
        }
        self._names = {arn: name for name, arn in self.arns.items()}
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._serial = itertools.count(1)
        self.requests: collections.Counter[str] = collections.Counter()
        self.throttled: list[tuple[str, str]] = []  # (operation, channel name)
        self.allocations: collections.Counter[str] = collections.Counter()
        self.peak_allocations: collections.Counter[str] = collections.Counter()
        self.refused_allocations = 0
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        self.control = session.client("kinesisvideo")
        self.signaling = session.client("kinesis-video-signaling", endpoint_url=ENDPOINT)
        for client in (self.control, self.signaling):
            client.meta.events.register_first("before-parameter-build.*.*", self._keep_params)
            client.meta.events.register_first("before-call.*.*", self._answer)

    def factory(self, service: str, endpoint_url: str | None) -> Any:
        """The ICE provider's client factory: every provider shares these two clients."""
        return self.control if service == "kinesisvideo" else self.signaling

    # -- the TURN side: a call's peers allocate with the credentials they got --------------------------

    def allocate(self, username: str, count: int) -> None:
        """`count` allocations on the channel that issued `username`; refused (486 Allocation Quota
        Reached) beyond the channel's 50."""
        channel = username.split(":")[1]
        with self._lock:
            if self.allocations[channel] + count > ALLOCATIONS_PER_CHANNEL:
                self.refused_allocations += count
                return
            self.allocations[channel] += count
            self.peak_allocations[channel] = max(self.peak_allocations[channel], self.allocations[channel])

    # -- botocore's seams ---------------------------------------------------------------------------------

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["quota_kvs_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context["quota_kvs_params"]
        with self._lock:
            self.requests[model.name] += 1
            channel = self._channel_of(model.name, params)
            if channel is None:
                return _error(404, "ResourceNotFoundException", "The requested channel is not found")
            if model.name in PER_CHANNEL_OPERATIONS and not self._within_rate(model.name, channel):
                self.throttled.append((model.name, channel))
                return _error(400, "ClientLimitExceededException", "Rate exceeded")
            response = self._response(model.name, channel)
        validate_parameters(response, model.output_shape)
        return AWSResponse(None, 200, {}, None), response

    def _channel_of(self, operation: str, params: dict[str, Any]) -> str | None:
        if operation == "DescribeSignalingChannel":
            name = params.get("ChannelName")
            return name if name in self.arns else None
        return self._names.get(params.get("ChannelARN", ""))

    def _within_rate(self, operation: str, channel: str) -> bool:
        now = self._clock()
        recent = self._recent[(operation, channel)]
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) >= REQUESTS_PER_SECOND_PER_CHANNEL:
            return False
        recent.append(now)
        return True

    def _response(self, operation: str, channel: str) -> dict[str, Any]:
        arn = self.arns[channel]
        if operation == "DescribeSignalingChannel":
            return {
                "ChannelInfo": {
                    "ChannelName": channel,
                    "ChannelARN": arn,
                    "ChannelType": "SINGLE_MASTER",
                    "ChannelStatus": "ACTIVE",
                    "SingleMasterConfiguration": {"MessageTtlSeconds": 60},
                }
            }
        if operation == "GetSignalingChannelEndpoint":
            return {"ResourceEndpointList": [{"Protocol": "HTTPS", "ResourceEndpoint": ENDPOINT}]}
        if operation == "GetIceServerConfig":
            # Two servers, as KVS answers; the username names the channel, as the TURN side needs.
            return {"IceServerList": [self._server(channel, 1), self._server(channel, 2)]}
        raise AssertionError(f"the ICE provider called {operation}")

    def _server(self, channel: str, number: int) -> dict[str, Any]:
        host = f"35-0-0-{number}.t-1.kinesisvideo.{REGION}.amazonaws.com"
        return {
            "Uris": [
                f"turn:{host}:443?transport=udp",
                f"turns:{host}:443?transport=udp",
                f"turns:{host}:443?transport=tcp",
            ],
            "Username": f"{int(self._clock())}:{channel}:{next(self._serial)}",
            "Password": "secret",
            "Ttl": 300,
        }


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse(None, status, {}, None), {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
