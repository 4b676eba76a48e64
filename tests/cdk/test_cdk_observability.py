"""The dashboard, the alarms and their SNS topic in every stage's agent stack.

The stages of cdk.json come from the session's synth (cdk-nag runs there and raises on any finding); one
extra stage, with the optional `alarmEmail` passed through context, is synthesized once here.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from cdk_test_support import CDK_JSON_CONTEXT, STAGE_NAMES, SynthesizedStage, synthesize
from voice_agent import contract

from cdk.config import StageConfigError, parse_stage

ALARM_EMAIL = "oncall@example.com"


@pytest.fixture(scope="module")
def with_email(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    """A stage like dev with an alarm e-mail: a different stage, not a second synth of one."""
    stages = {"ops": {**CDK_JSON_CONTEXT["stages"]["dev"], "alarmEmail": ALARM_EMAIL}}
    return synthesize("ops", web_client_dir, tmp_path_factory.mktemp("synth_ops"), stages=stages)


def resources(stage: SynthesizedStage, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stage.agent.to_json()["Resources"].items() if v["Type"] == kind}


def alarm(stage: SynthesizedStage, suffix: str) -> dict[str, Any]:
    name = f"voice-agent-{stage.config.name}-{suffix}"
    (found,) = [
        r["Properties"]
        for r in resources(stage, "AWS::CloudWatch::Alarm").values()
        if r["Properties"]["AlarmName"] == name
    ]
    return found


def metric_stats(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m}


def expression(properties: dict[str, Any]) -> str:
    (returned,) = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
    return returned["Expression"]


def dashboard_body(stage: SynthesizedStage) -> str:
    (dashboard,) = resources(stage, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"voice-agent-{stage.config.name}"
    # The body is a Fn::Join of strings and tokens (region, runtime ARN): keep the strings.
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "<token>" for p in parts)


def stage_metric(stage: SynthesizedStage, name: str, stat: str = "Sum", period: int = 300) -> dict[str, Any]:
    return {
        "Metric": {
            "Dimensions": [{"Name": "Stage", "Value": stage.config.name}],
            "MetricName": name,
            "Namespace": "VoiceAgent",
        },
        "Period": period,
        "Stat": stat,
    }


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_connect_failure_rate_alarm(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    properties = alarm(stage, "connect-failure-rate")
    assert expression(properties) == "IF(started >= 3, failed / started, 0)"
    assert metric_stats(properties) == {
        "started": stage_metric(stage, "CallsStarted"),
        "failed": stage_metric(stage, "CallsFailedToConnect"),
    }
    assert properties["Threshold"] == 0.2
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert (properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (3, 2)
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_voice_error_rate_alarm(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    properties = alarm(stage, "voice-error-rate")
    assert expression(properties) == "IF(opened > 0, FILL(errors, 0) / opened, FILL(errors, 0))"
    assert metric_stats(properties) == {
        "opened": stage_metric(stage, "VoiceStreamsOpened"),
        "errors": stage_metric(stage, "VoiceStreamErrors"),
    }
    assert properties["Threshold"] == 0.1
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_invocation_errors_alarm_watches_this_runtime(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    properties = alarm(stage, "invocation-errors")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Bedrock-AgentCore", "SystemErrors")
    assert properties["Statistic"] == "Sum" and properties["Period"] == 300
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    assert dimensions["Operation"] == "InvokeAgentRuntime"
    assert "AgentRuntimeArn" in json.dumps(dimensions["Resource"])
    assert dimensions["Name"] == f"{stage.config.runtime_name}::DEFAULT"
    assert properties["Threshold"] == 3
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_kvs_throttles_alarm_counts_kvs_throttles_and_the_agents_own_refusals(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    properties = alarm(stage, "kvs-throttles")
    assert expression(properties) == "FILL(kvs, 0) + FILL(agent, 0)"
    assert metric_stats(properties) == {
        "kvs": stage_metric(stage, "KvsThrottles"),
        "agent": stage_metric(stage, "KvsRateLimited"),
    }
    assert properties["Threshold"] == 3
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["EvaluationPeriods"] == 1
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_agentcore_throttles_alarm_watches_this_runtime(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    properties = alarm(stage, "agentcore-throttles")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Bedrock-AgentCore", "Throttles")
    assert properties["Statistic"] == "Sum" and properties["Period"] == 300
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    assert dimensions["Name"] == f"{stage.config.runtime_name}::DEFAULT"
    assert properties["Threshold"] == 5
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_every_alarm_notifies_the_tls_only_topic_and_no_one_subscribes_by_default(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    (topic_id,) = resources(stage, "AWS::SNS::Topic")
    alarms = resources(stage, "AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 5
    for resource in alarms:
        assert resource["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert resource["Properties"]["OKActions"] == [{"Ref": topic_id}]
    (policy,) = resources(stage, "AWS::SNS::TopicPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources(stage, "AWS::SNS::Subscription") == {}


def test_the_alarm_email_subscribes_to_the_topic(with_email: SynthesizedStage) -> None:
    (topic_id,) = resources(with_email, "AWS::SNS::Topic")
    (subscription,) = resources(with_email, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": ALARM_EMAIL,
        "Protocol": "email",
        "TopicArn": {"Ref": topic_id},
    }


def test_a_stage_with_an_alarm_email_passes_cdk_nag(with_email: SynthesizedStage) -> None:
    # synthesize() raises on any unacknowledged finding; the report must also be empty.
    report = json.loads((with_email.assembly_dir.parent / "validation-report.json").read_text())
    violations = [v for plugin in report.get("pluginReports", []) for v in plugin["violations"]]
    assert violations == []


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_dashboard_shows_calls_connect_time_failures_voice_kvs_and_the_runtime(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    body = dashboard_body(stage)
    for title in (
        "Live calls",
        "Connect time (offer to connected)",
        "Failed to connect, by reason",
        "Voice (Nova Sonic) streams",
        "TURN credentials (KVS)",
        "Runtime invocations (AgentCore)",
    ):
        assert f'"title":"{title}"' in body, title
    stage_dimension = f'"Stage","{stage_name}"'
    # Live calls: each live call reports its seconds once a minute.
    assert '"expression":"seconds / PERIOD(seconds)"' in body
    assert f'["VoiceAgent","LiveCallSeconds",{stage_dimension},{{"id":"seconds"' in body
    # Connect time percentiles.
    for stat in ("p50", "p90"):
        assert f'["VoiceAgent","ConnectTime",{stage_dimension},{{"label":"{stat}","stat":"{stat}"}}]' in body
    # Failures by reason: one line per EndReason, whichever appear.
    assert (
        'SEARCH(\'{VoiceAgent,EndReason,Stage} MetricName=\\"CallsFailedToConnect\\" '
        f"Stage=\\\"{stage_name}\\\"', 'Sum', 300)"
    ) in body
    for name in ("VoiceStreamErrors", "VoiceReconnects", "VoiceRotations", "KvsThrottles"):
        assert f'["VoiceAgent","{name}",{stage_dimension}' in body, name
    # The runtime's own invocation metrics, errors and latency.
    for name in ("Invocations", "SystemErrors", "UserErrors", "Latency"):
        assert f'["AWS/Bedrock-AgentCore","{name}"' in body, name
    assert '"stat":"p90"' in body and '"type":"alarm"' in body


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_dashboard_shows_kvs_throttles_by_channel_from_the_agents_log_lines(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    body = dashboard_body(stage)
    assert '"title":"KVS throttles by channel"' in body
    (application_logs,) = [
        logical_id
        for logical_id, group in resources(stage, "AWS::Logs::LogGroup").items()
        if group["Properties"].get("LogGroupName")
        == f"/aws/vendedlogs/bedrock-agentcore/voice_agent_{stage_name}"
    ]
    (dashboard,) = resources(stage, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    source = parts.index({"Ref": application_logs})
    assert parts[source - 1].endswith("SOURCE '")
    assert 'filter event = \\"kvs_throttled\\"' in body
    assert "stats count(*) as throttles by channel, by" in body


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_the_dashboard_url_is_an_output(synthesized, stage_name: str) -> None:
    outputs = synthesized[stage_name].agent.to_json()["Outputs"]
    assert f"#dashboards/dashboard/voice-agent-{stage_name}" in json.dumps(outputs["DashboardUrl"])


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_every_metric_the_agent_writes_is_on_the_dashboard(synthesized, stage_name: str) -> None:
    body = dashboard_body(synthesized[stage_name])
    assert [name for name in contract.METRIC_NAMES if name not in body] == []


def test_alarm_email_is_optional_and_validated() -> None:
    base = dict(CDK_JSON_CONTEXT["stages"]["dev"])
    assert parse_stage("dev", base).alarm_email is None
    assert parse_stage("dev", {**base, "alarmEmail": ALARM_EMAIL}).alarm_email == ALARM_EMAIL
    for bad in ("not-an-email", "a@b.com,c@d.com", "", 42):
        with pytest.raises(StageConfigError, match=r"stages\.dev\.alarmEmail"):
            parse_stage("dev", {**base, "alarmEmail": bad})


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_the_runtime_delivers_its_traces_to_xray(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    sources = resources(stage, "AWS::Logs::DeliverySource").values()
    destinations = resources(stage, "AWS::Logs::DeliveryDestination").values()
    assert any(s["Properties"]["LogType"] == "TRACES" for s in sources)
    assert any(d["Properties"].get("DeliveryDestinationType") == "XRAY" for d in destinations)
