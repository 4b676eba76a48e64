"""Operations for one stage: a CloudWatch dashboard, five alarms and the SNS topic they notify.

The agent writes its metrics as Embedded Metric Format lines on stdout (runtime_image/voice_agent/
metrics.py); AgentCore ships stdout to the runtime's log group and CloudWatch extracts the metrics into
namespace `VoiceAgent`, dimension `Stage` (and `Stage, EndReason` for the per-call record). The runtime's
own invocation metrics come from the AgentCore L2 (`AWS/Bedrock-AgentCore`). Throttles per KVS channel
come from the agent's `kvs_throttled` log lines (a Logs Insights widget: the channel is a field of the line,
not a metric dimension).
"""

from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from voice_agent_ops import naming

from cdk import agent_contract as contract
from cdk.nag import acknowledge

ALARM_PERIOD = Duration.minutes(5)
#: Alarm when more than this share of calls ends without connecting (2 of 3 five-minute periods).
CONNECT_FAILURE_RATE_THRESHOLD = 0.2
#: ... but only once this many calls were attempted in the period: one failed test call is not an outage.
CONNECT_FAILURE_MIN_CALLS = 3
#: Alarm when more than this share of Nova Sonic streams fails (2 of 3 five-minute periods).
VOICE_ERROR_RATE_THRESHOLD = 0.1
#: Alarm on this many runtime system errors (5xx from AgentCore) in one five-minute period.
INVOCATION_ERRORS_THRESHOLD = 3
#: Alarm on this many TURN credential requests refused in five minutes, by KVS or by the agent's budget:
#: each is a caller retrying, and a pool sized for its stage sees almost none.
KVS_THROTTLES_THRESHOLD = 3
#: Alarm on this many requests AgentCore throttled in five minutes (new sessions or invocations a second).
AGENTCORE_THROTTLES_THRESHOLD = 5

Comparison = cloudwatch.ComparisonOperator


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm on one of the construct's signals; missing data (no calls) never breaches."""

    construct_id: str
    name: str  # after `voice-agent-<stage>-`
    signal: str  # a key of VoiceAgentObservability.signals
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    evaluation_periods: int
    datapoints_to_alarm: int | None
    description: str


ALARMS = (
    AlarmSpec(
        construct_id="ConnectFailureRateAlarm",
        name="connect-failure-rate",
        signal="connect_failure_rate",
        threshold=CONNECT_FAILURE_RATE_THRESHOLD,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        description=(
            f"More than {CONNECT_FAILURE_RATE_THRESHOLD:.0%} of calls ended without connecting "
            f"(at least {CONNECT_FAILURE_MIN_CALLS} calls in 5 minutes). Check TURN (KVS throttles, "
            "the NAT gateway, the runtime security group's UDP/TCP egress) and the agent's "
            "call_ended log lines for the reasons."
        ),
    ),
    AlarmSpec(
        construct_id="VoiceErrorRateAlarm",
        name="voice-error-rate",
        signal="voice_error_rate",
        threshold=VOICE_ERROR_RATE_THRESHOLD,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        description=(
            f"More than {VOICE_ERROR_RATE_THRESHOLD:.0%} of Nova Sonic streams failed in 5 minutes. "
            "Check Bedrock quotas and model access, the model's service health in the region, and "
            "the agent's 'nova sonic stream' warnings in the application logs."
        ),
    ),
    AlarmSpec(
        construct_id="InvocationErrorsAlarm",
        name="invocation-errors",
        signal="invocation_errors",
        threshold=INVOCATION_ERRORS_THRESHOLD,
        comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        datapoints_to_alarm=None,
        description=(
            f"AgentCore answered at least {INVOCATION_ERRORS_THRESHOLD} runtime invocations with a "
            "system error in 5 minutes. Check the runtime's status, the application logs for "
            "internal_error lines and for containers that fail /ping, and recent deployments."
        ),
    ),
    AlarmSpec(
        construct_id="KvsThrottlesAlarm",
        name="kvs-throttles",
        signal="kvs_throttles",
        threshold=KVS_THROTTLES_THRESHOLD,
        comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        datapoints_to_alarm=None,
        description=(
            f"At least {KVS_THROTTLES_THRESHOLD} TURN credential requests were throttled by KVS or held "
            "back by the agent's per-channel budget in 5 minutes. See 'KVS throttles by channel' on the "
            "dashboard: one hot channel is chance, many mean the pool is too small for the traffic "
            "(raise maxConcurrentCalls or peakNewCallsPerSecond, see make capacity)."
        ),
    ),
    AlarmSpec(
        construct_id="AgentCoreThrottlesAlarm",
        name="agentcore-throttles",
        signal="agentcore_throttles",
        threshold=AGENTCORE_THROTTLES_THRESHOLD,
        comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        datapoints_to_alarm=None,
        description=(
            f"AgentCore throttled at least {AGENTCORE_THROTTLES_THRESHOLD} runtime invocations in 5 "
            "minutes. Compare the stage's traffic with the account's AgentCore Runtime quotas (active "
            "sessions, new sessions a second; make capacity) and request an increase in Service Quotas."
        ),
    ),
)


class VoiceAgentObservability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        runtime: agentcore.IBedrockAgentRuntime,
        application_logs: logs.ILogGroup,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage_name = stage_name
        self._application_logs = application_logs
        self._dimensions = {"Stage": stage_name}
        self.alarm_topic = self._alarm_topic(alarm_email)
        self.signals: dict[str, cloudwatch.Metric | cloudwatch.MathExpression] = {
            "connect_failure_rate": cloudwatch.MathExpression(
                expression=f"IF(started >= {CONNECT_FAILURE_MIN_CALLS}, failed / started, 0)",
                using_metrics={
                    "started": self.sum(contract.CALLS_STARTED),
                    "failed": self.sum(contract.CALLS_FAILED_TO_CONNECT),
                },
                label="Share of calls that failed to connect",
                period=ALARM_PERIOD,
            ),
            # With no stream opened in a period every attempt failed: the error count itself breaches.
            "voice_error_rate": cloudwatch.MathExpression(
                expression="IF(opened > 0, FILL(errors, 0) / opened, FILL(errors, 0))",
                using_metrics={
                    "opened": self.sum(contract.VOICE_STREAMS_OPENED),
                    "errors": self.sum(contract.VOICE_STREAM_ERRORS),
                },
                label="Share of Nova Sonic streams that failed",
                period=ALARM_PERIOD,
            ),
            "invocation_errors": runtime.metric_system_errors(period=ALARM_PERIOD),
            "kvs_throttles": cloudwatch.MathExpression(
                expression="FILL(kvs, 0) + FILL(agent, 0)",
                using_metrics={
                    "kvs": self.sum(contract.KVS_THROTTLES),
                    "agent": self.sum(contract.KVS_RATE_LIMITED),
                },
                label="TURN credential requests throttled",
                period=ALARM_PERIOD,
            ),
            "agentcore_throttles": runtime.metric_throttles(period=ALARM_PERIOD),
        }
        notify = cloudwatch_actions.SnsAction(self.alarm_topic)
        self.alarms = tuple(self._alarm(spec, notify) for spec in ALARMS)
        self.dashboard = self._dashboard(runtime)

        stack = Stack.of(self)
        CfnOutput(
            stack,
            "DashboardUrl",
            value=(
                f"https://{stack.region}.console.aws.amazon.com/cloudwatch/home?region={stack.region}"
                f"#dashboards/dashboard/{naming.dashboard_name(stage_name)}"
            ),
        )

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        topic = sns.Topic(
            self, "AlarmTopic", display_name=f"Voice agent {self._stage_name} alarms", enforce_ssl=True
        )
        acknowledge(
            topic,
            "AwsSolutions-SNS2",
            "The topic carries only CloudWatch alarm state changes (alarm names, thresholds, metric "
            "values), no customer data or audio; CloudWatch cannot publish to a topic encrypted with "
            "the AWS managed SNS key, and a customer managed KMS key per stage would only guard alarm text.",
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(self, spec: AlarmSpec, notify: cloudwatch.IAlarmAction) -> cloudwatch.Alarm:
        alarm = self.signals[spec.signal].create_alarm(
            self,
            spec.construct_id,
            alarm_name=naming.alarm_name(self._stage_name, spec.name),
            alarm_description=spec.description,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(notify)
        alarm.add_ok_action(notify)
        return alarm

    def _dashboard(self, runtime: agentcore.IBedrockAgentRuntime) -> cloudwatch.Dashboard:
        minute = Duration.minutes(1)
        live_seconds = self.sum(contract.LIVE_CALL_SECONDS, period=minute)
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=naming.dashboard_name(self._stage_name),
            default_interval=Duration.hours(3),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Live calls",
                left=[
                    cloudwatch.MathExpression(
                        # Each live call reports its seconds once a minute: seconds / 60 = calls.
                        expression="seconds / PERIOD(seconds)",
                        using_metrics={"seconds": live_seconds},
                        label="Live calls",
                        period=minute,
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Connect time (offer to connected)",
                left=[
                    self.metric(contract.CONNECT_TIME, statistic="p50", label="p50"),
                    self.metric(contract.CONNECT_TIME, statistic="p90", label="p90"),
                ],
                left_y_axis=cloudwatch.YAxisProps(label="ms", show_units=False),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Calls",
                left=[
                    self.sum(contract.CALLS_STARTED, label="started"),
                    self.sum(contract.CALLS_ENDED, label="ended"),
                    self.sum(contract.CALLS_FAILED_TO_CONNECT, label="failed to connect"),
                ],
                right=[self.signals["connect_failure_rate"]],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Failed to connect, by reason",
                left=[self.by_reason(contract.CALLS_FAILED_TO_CONNECT, self._stage_name)],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Calls ended, by reason",
                left=[self.by_reason(contract.CALLS_ENDED, self._stage_name)],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Call duration and audio quality",
                left=[
                    self.metric(contract.CALL_DURATION, statistic="p50", label="duration p50 (s)"),
                    self.metric(contract.CALL_DURATION, statistic="p90", label="duration p90 (s)"),
                ],
                right=[
                    self.sum(contract.OUTPUT_UNDERRUNS, label="output underruns"),
                    self.sum(contract.BARGE_INS, label="barge-ins"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Voice (Nova Sonic) streams",
                left=[
                    self.sum(contract.VOICE_STREAM_ERRORS, label="errors"),
                    self.sum(contract.VOICE_RECONNECTS, label="reconnects"),
                    self.sum(contract.VOICE_ROTATIONS, label="rotations"),
                    self.sum(contract.VOICE_GIVE_UPS, label="gave up"),
                    self.sum(contract.VOICE_STREAMS_OPENED, label="opened"),
                ],
                right=[self.signals["voice_error_rate"]],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="TURN credentials (KVS)",
                left=[
                    self.sum(contract.KVS_THROTTLES, label="throttled by KVS"),
                    self.sum(contract.KVS_RATE_LIMITED, label="held back by the agent's budget"),
                    self.sum(contract.KVS_CREDENTIAL_FETCHES, label="fetches"),
                    self.sum(contract.KVS_CREDENTIAL_CACHE_HITS, label="cache hits"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Runtime invocations (AgentCore)",
                left=[
                    runtime.metric_invocations(label="invocations"),
                    runtime.metric_system_errors(label="system errors"),
                    runtime.metric_user_errors(label="user errors"),
                    runtime.metric_throttles(label="throttles"),
                ],
                right=[
                    runtime.metric_latency(statistic="p50", label="latency p50"),
                    runtime.metric_latency(statistic="p90", label="latency p90"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="KVS throttles by channel",
                log_group_names=[self._application_logs.log_group_name],
                query_lines=[
                    "fields channel, by",
                    'filter event = "kvs_throttled"',
                    "stats count(*) as throttles by channel, by",
                    "sort throttles desc",
                    "limit 20",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=24,
            )
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3)
        )
        return dashboard

    def metric(self, name: str, *, statistic: str, label: str | None = None, **options) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=contract.NAMESPACE,
            metric_name=name,
            dimensions_map=self._dimensions,
            statistic=statistic,
            label=label,
            period=options.pop("period", ALARM_PERIOD),
            **options,
        )

    def sum(
        self, name: str, *, label: str | None = None, period: Duration | None = None
    ) -> cloudwatch.Metric:
        return self.metric(name, statistic="Sum", label=label, period=period or ALARM_PERIOD)

    @staticmethod
    def by_reason(name: str, stage_name: str) -> cloudwatch.MathExpression:
        """One line per EndReason, whatever reasons appear (a SEARCH; dashboards only, not alarms)."""
        return cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'{{{contract.NAMESPACE},EndReason,Stage}} MetricName="{name}" '
                f"Stage=\"{stage_name}\"', 'Sum', 300)"
            ),
            using_metrics={},
            label="",
            period=ALARM_PERIOD,
        )
