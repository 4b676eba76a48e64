"""CloudWatch EMF metrics from real calls, the Nova Sonic voice and the KVS provider.

A real echo call runs against the agent process (``--metrics emf``) and its stdout is parsed as
CloudWatch would parse it; the voice's stream events come from the scripted Nova Sonic fakes, the KVS
events from botocore's Stubber. With metrics off, nothing is written.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from agent_calls import burst_caller, wait_for_call_end
from agent_inprocess import serve_app
from aws_sdk_bedrock_runtime.models import ModelTimeoutException
from nova_sonic_fakes import FakeBedrock, FakeClock, RecordingOutput, wait_until
from test_agent_kvs_ice import CHANNEL, REGION, StubbedKvs
from test_agent_kvs_ice import FakeClock as KvsClock
from voice_agent.app import create_app
from voice_agent.audio import PacedOutputTrack
from voice_agent.cli import build_parser
from voice_agent.ice import IceUnavailable, KvsIce
from voice_agent.metrics import EmfMetrics, NoMetrics, create_metrics
from voice_agent.settings import Settings, SettingsError
from voice_agent.voices.base import VoiceOutput, VoiceSession
from voice_agent.voices.nova_sonic import NovaSonicConfig, NovaSonicVoice

from testbed.caller import RtcCaller, SignalingError
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(120)

CALL_RECORD_UNITS = {
    "CallsStarted": "Count",
    "CallsEnded": "Count",
    "CallsFailedToConnect": "Count",
    "ConnectTime": "Milliseconds",
    "CallDuration": "Seconds",
    "OutputUnderruns": "Count",
    "BargeIns": "Count",
    "LiveCallSeconds": "Seconds",
}


def emf_documents(text: str) -> list[dict[str, Any]]:
    """Every line CloudWatch Logs would extract metrics from, checked against the EMF specification."""
    documents = []
    for line in text.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        meta = document["_aws"]
        assert isinstance(meta["Timestamp"], int)
        (directive,) = meta["CloudWatchMetrics"]
        assert directive["Namespace"] == "VoiceAgent"
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(document[name], str) for name in dimension_set), dimension_set
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float), metric
        documents.append(document)
    return documents


def metrics_of(document: dict[str, Any]) -> dict[str, str]:
    """Name -> unit of the metrics one document declares."""
    return {x["Name"]: x["Unit"] for x in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def dimensions_of(document: dict[str, Any]) -> list[list[str]]:
    return document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def events_named(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in documents if name in metrics_of(d)]


# -- a real call against the agent process -------------------------------------------------------


@pytest.fixture(scope="module")
def emf_agent() -> Iterator[AgentProcess]:
    with AgentProcess.start(voice="echo", extra_args=["--metrics", "emf", "--stage", "metricstest"]) as agent:
        yield agent


async def test_a_real_call_writes_one_call_record_with_every_call_metric(emf_agent: AgentProcess) -> None:
    caller, _ = burst_caller(emf_agent.url, 440.0, count=2)
    try:
        await caller.connect()
        await caller.wait_connected()
        await asyncio.wait_for(caller.source.finished.wait(), 30)
        status, _ = await caller.disconnect()
        assert status == 200
    finally:
        await caller.close()
    ended = await asyncio.to_thread(wait_for_call_end, emf_agent, caller.pc_id or "")
    assert ended is not None
    records = [d for d in emf_documents(emf_agent.read_log()) if d.get("EndReason") == "disconnect"]
    assert len(records) == 1
    (record,) = records
    assert metrics_of(record) == CALL_RECORD_UNITS
    assert dimensions_of(record) == [["Stage"], ["Stage", "EndReason"]]
    assert record["Stage"] == "metricstest"
    assert (record["CallsStarted"], record["CallsEnded"], record["CallsFailedToConnect"]) == (1, 1, 0)
    assert 0 < record["ConnectTime"] < 30_000
    assert record["ConnectTime"] / 1000 < record["CallDuration"]
    assert record["LiveCallSeconds"] == pytest.approx(record["CallDuration"], abs=0.01)  # under a minute
    assert record["BargeIns"] == 0  # echo never barges in
    assert record["OutputUnderruns"] >= 0 and record["OutputUnderruns"] == ended["output_underruns"]


async def test_metrics_are_off_by_default_and_a_call_writes_nothing(echo_agent: AgentProcess) -> None:
    (started,) = [e for e in echo_agent.log_events() if e.get("event") == "agent_started"]
    assert started["metrics"] == "off"
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    try:
        await caller.connect()
        await caller.wait_connected()
        await caller.disconnect()
    finally:
        await caller.close()
    assert await asyncio.to_thread(wait_for_call_end, echo_agent, caller.pc_id or "") is not None
    assert emf_documents(echo_agent.read_log()) == []


def test_metrics_off_is_a_no_op_object() -> None:
    metrics = create_metrics("off", stage="x")
    assert isinstance(metrics, NoMetrics) and not metrics.enabled
    assert isinstance(create_metrics("emf", stage="x"), EmfMetrics)


def test_the_metrics_switch_has_a_flag_and_an_environment_variable() -> None:
    assert Settings().metrics == "off"
    assert Settings.from_env({"VOICE_AGENT_METRICS": "EMF"}).metrics == "emf"
    assert build_parser().parse_args(["--metrics", "emf"]).metrics == "emf"
    with pytest.raises(SettingsError, match="VOICE_AGENT_METRICS"):
        Settings.from_env({"VOICE_AGENT_METRICS": "prometheus"})


# -- in-process: capacity failures, barge-ins, live-call seconds -----------------------------------


class BargingEcho:
    """A voice whose caller 'interrupts' it on every 10th frame: barge-ins through the real call."""

    name = "barging-echo"
    paced_by_caller = True  # the Voice interface requires it (base.py); like echo, caller-paced

    def open_session(self, *, call_id: str, output: VoiceOutput) -> VoiceSession:
        return BargingEchoSession(output)


class BargingEchoSession:
    def __init__(self, output: VoiceOutput) -> None:
        self._output = output
        self.frames = 0

    async def start(self) -> None:
        pass

    async def send_audio(self, pcm: bytes) -> None:
        self.frames += 1
        if self.frames % 10 == 0 and self.frames <= 30:
            self._output.clear()

    async def close(self) -> None:
        pass


async def test_barge_ins_and_an_offer_refused_at_capacity_are_counted() -> None:
    stream = io.StringIO()
    app = create_app(
        Settings(max_calls=1, stage="inproc"),
        voice=BargingEcho(),
        metrics=EmfMetrics(stage="inproc", stream=stream),
    )
    async with serve_app(app) as url:
        first = RtcCaller(url)
        second = RtcCaller(url)
        try:
            await first.connect()
            await first.wait_connected()
            await first.wait_for_event(lambda e: e == {"type": "state", "state": "interrupted"})
            with pytest.raises(SignalingError) as refused:
                await second.connect()
            assert refused.value.status == 503
            await wait_until(lambda: "offer_at_capacity" in stream.getvalue(), what="capacity record")
            await asyncio.sleep(0.8)  # let all three barge-ins happen (frames 10, 20 and 30)
            await first.disconnect()
        finally:
            await first.close()
            await second.close()
    documents = emf_documents(stream.getvalue())
    by_reason = {d["EndReason"]: d for d in documents if "EndReason" in d}
    assert set(by_reason) == {"offer_at_capacity", "disconnect"}
    refused_record = by_reason["offer_at_capacity"]
    assert (refused_record["CallsStarted"], refused_record["CallsFailedToConnect"]) == (1, 1)
    assert "ConnectTime" not in refused_record
    assert by_reason["disconnect"]["BargeIns"] == 3
    assert by_reason["disconnect"]["CallsFailedToConnect"] == 0


async def test_bad_input_is_not_a_call_and_writes_no_record() -> None:
    stream = io.StringIO()
    app = create_app(Settings(), metrics=EmfMetrics(stage="inproc", stream=stream))
    async with serve_app(app) as url:
        caller = RtcCaller(url)
        try:
            status, body = await caller.invoke("offer", {"sdp": "v=0\r\n", "type": "offer"}, check=False)
        finally:
            await caller.close()
    assert status == 400, body
    assert emf_documents(stream.getvalue()) == []


async def test_a_live_call_reports_its_seconds_while_it_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voice_agent.call_telemetry.LIVE_REPORT_SECONDS", 0.3)
    stream = io.StringIO()
    app = create_app(Settings(stage="inproc"), metrics=EmfMetrics(stage="inproc", stream=stream))
    async with serve_app(app) as url:
        caller = RtcCaller(url)
        try:
            await caller.connect()
            await caller.wait_connected()
            await wait_until(
                lambda: len(events_named(emf_documents(stream.getvalue()), "LiveCallSeconds")) >= 2,
                what="two live reports",
                seconds=15,
            )
            await caller.disconnect()
        finally:
            await caller.close()
    documents = emf_documents(stream.getvalue())
    live = [d for d in events_named(documents, "LiveCallSeconds") if "EndReason" not in d]
    assert all(metrics_of(d) == {"LiveCallSeconds": "Seconds"} for d in live)
    assert all(dimensions_of(d) == [["Stage"]] for d in live)
    (record,) = [d for d in documents if "EndReason" in d]
    # Every second of the call is reported exactly once: periodic reports plus the rest at the end.
    total = sum(d["LiveCallSeconds"] for d in live) + record["LiveCallSeconds"]
    assert total == pytest.approx(record["CallDuration"], abs=0.01)


# -- the output track's underruns ------------------------------------------------------------------


async def test_a_gap_in_flowing_audio_is_one_underrun_and_the_end_of_speech_is_none() -> None:
    track = PacedOutputTrack(input_rate=48_000)
    frame = b"\x01\x00" * 960
    track.write(frame * 2)
    await track.recv()
    await track.recv()
    await track.recv()  # the buffer ran dry while speaking: silence goes out
    track.write(frame)
    await track.recv()  # audio again after one silent frame: an underrun
    assert track.underruns == 1
    for _ in range(12):
        await track.recv()  # a pause longer than a gap: the utterance ended
    track.write(frame)
    await track.recv()
    assert track.underruns == 1
    track.clear()  # a barge-in's gap is not an underrun either
    await track.recv()
    track.write(frame)
    await track.recv()
    assert track.underruns == 1
    track.stop()


# -- the Nova Sonic voice: stream errors, reconnects, rotations ------------------------------------


def make_nova_session(bedrock: FakeBedrock, stream: io.StringIO, **overrides: Any) -> Any:
    config: dict[str, Any] = {
        "region": "us-east-1",
        "client_factory": bedrock,
        "reconnect_backoff_seconds": 0.01,
        "close_timeout_seconds": 2.0,
    }
    config.update(overrides)
    voice = NovaSonicVoice(NovaSonicConfig(**config), metrics=EmfMetrics(stage="voice", stream=stream))
    return voice.open_session(call_id="call-1", output=RecordingOutput())


def counts(stream: io.StringIO) -> dict[str, int]:
    totals: dict[str, int] = {}
    for document in emf_documents(stream.getvalue()):
        assert dimensions_of(document) == [["Stage"]] and document["Stage"] == "voice"
        for name, unit in metrics_of(document).items():
            assert unit == "Count"
            totals[name] = totals.get(name, 0) + document[name]
    return totals


async def test_a_stream_error_and_its_reconnect_are_counted() -> None:
    bedrock, stream = FakeBedrock(), io.StringIO()
    session = make_nova_session(bedrock, stream)
    await session.start()
    try:
        bedrock.streams[0].fail(ModelTimeoutException("Timed out waiting for audio bytes"))
        await wait_until(lambda: counts(stream).get("VoiceReconnects") == 1, what="a reconnect")
    finally:
        await session.close()
    assert counts(stream) == {"VoiceStreamsOpened": 2, "VoiceStreamErrors": 1, "VoiceReconnects": 1}


async def test_a_rotation_is_counted_and_is_not_an_error() -> None:
    bedrock, stream, clock = FakeBedrock(), io.StringIO(), FakeClock()
    session = make_nova_session(bedrock, stream, clock=clock)
    await session.start()
    try:
        clock.now += 421.0
        await wait_until(lambda: counts(stream).get("VoiceRotations") == 1, what="a rotation")
    finally:
        await session.close()
    assert counts(stream) == {"VoiceStreamsOpened": 2, "VoiceRotations": 1}


async def test_failed_reopens_and_giving_up_are_counted() -> None:
    bedrock, stream = FakeBedrock(), io.StringIO()
    session = make_nova_session(bedrock, stream, max_reconnects=2)
    await session.start()
    try:
        bedrock.refuse_opens = 100
        bedrock.streams[0].end()  # the model hangs up unexpectedly
        await wait_until(lambda: counts(stream).get("VoiceGiveUps") == 1, what="giving up")
    finally:
        await session.close()
    # The dropped stream and both refused reopens are errors.
    assert counts(stream) == {"VoiceStreamsOpened": 1, "VoiceStreamErrors": 3, "VoiceGiveUps": 1}


# -- KVS: credential fetches, cache hits, throttles -------------------------------------------------


@pytest.fixture
def kvs() -> Iterator[StubbedKvs]:
    stubbed = StubbedKvs()
    with stubbed.kinesisvideo_stub, stubbed.signaling_stub:
        yield stubbed


async def test_kvs_fetches_cache_hits_and_throttles_are_counted(kvs: StubbedKvs) -> None:
    stream, clock = io.StringIO(), KvsClock()
    metrics = EmfMetrics(stage="kvs", stream=stream)
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock, metrics=metrics)
    kvs.expect_endpoint()
    kvs.expect_ice()
    await provider.servers("s")  # a fetch
    await provider.servers("s")  # a cache hit
    await provider.servers("s")  # a cache hit
    clock.now += 400  # expired
    kvs.expect_ice_error("ClientLimitExceededException")
    with pytest.raises(IceUnavailable):
        await provider.servers("s")  # a fetch, throttled
    kvs.assert_all_used()
    totals: dict[str, int] = {}
    for document in emf_documents(stream.getvalue()):
        assert dimensions_of(document) == [["Stage"]] and document["Stage"] == "kvs"
        for name, unit in metrics_of(document).items():
            assert unit == "Count"
            totals[name] = totals.get(name, 0) + document[name]
    assert totals == {"KvsCredentialFetches": 2, "KvsCredentialCacheHits": 2, "KvsThrottles": 1}
