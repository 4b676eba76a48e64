"""Operations for one stage: a CloudWatch dashboard, three alarms and the SNS topic they notify.

The agent writes its metrics as Embedded Metric Format lines on stdout (runtime_image/voice_agent/
metrics.py); AgentCore ships stdout to the runtime's log group and CloudWatch extracts the metrics into
namespace `VoiceAgent`, dimension `Stage` (and `Stage, EndReason` for the per-call record). The runtime's
own invocation metrics come from the AgentCore L2 (`AWS/Bedrock-AgentCore`).
"""

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from voice_agent_ops import naming

from cdk.agent_contract import (
    BARGE_INS,
    CALL_DURATION,
    CALLS_ENDED,
    CALLS_FAILED_TO_CONNECT,
    CALLS_STARTED,
    CONNECT_TIME,
    KVS_CREDENTIAL_CACHE_HITS,
    KVS_CREDENTIAL_FETCHES,
    KVS_THROTTLES,
    LIVE_CALL_SECONDS,
    NAMESPACE,
    OUTPUT_UNDERRUNS,
    VOICE_GIVE_UPS,
    VOICE_RECONNECTS,
    VOICE_ROTATIONS,
    VOICE_STREAM_ERRORS,
    VOICE_STREAMS_OPENED,
)
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


class VoiceAgentObservability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        runtime: agentcore.IBedrockAgentRuntime,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._dimensions = {"Stage": stage_name}

        # --- notification ---
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"Voice agent {stage_name} alarms", enforce_ssl=True
        )
        acknowledge(
            self.alarm_topic,
            "AwsSolutions-SNS2",
            "The topic carries only CloudWatch alarm state changes (alarm names, thresholds, metric "
            "values), no customer data or audio; CloudWatch cannot publish to a topic encrypted with "
            "the AWS managed SNS key, and a customer managed KMS key per stage would only guard alarm text.",
        )
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        notify = cloudwatch_actions.SnsAction(self.alarm_topic)

        # --- the agent's metrics ---
        started = self.sum(CALLS_STARTED)
        failed = self.sum(CALLS_FAILED_TO_CONNECT)
        self.connect_failure_rate = cloudwatch.MathExpression(
            expression=f"IF(started >= {CONNECT_FAILURE_MIN_CALLS}, failed / started, 0)",
            using_metrics={"started": started, "failed": failed},
            label="Share of calls that failed to connect",
            period=ALARM_PERIOD,
        )
        opened = self.sum(VOICE_STREAMS_OPENED)
        errors = self.sum(VOICE_STREAM_ERRORS)
        # With no stream opened in a period every attempt failed: the error count itself breaches.
        self.voice_error_rate = cloudwatch.MathExpression(
            expression="IF(opened > 0, FILL(errors, 0) / opened, FILL(errors, 0))",
            using_metrics={"opened": opened, "errors": errors},
            label="Share of Nova Sonic streams that failed",
            period=ALARM_PERIOD,
        )
        self.invocation_errors = runtime.metric_system_errors(period=ALARM_PERIOD)

        # --- alarms: missing data (no calls) is not a problem ---
        self.connect_failure_alarm = self.connect_failure_rate.create_alarm(
            self,
            "ConnectFailureRateAlarm",
            alarm_name=naming.alarm_name(stage_name, "connect-failure-rate"),
            alarm_description=(
                f"More than {CONNECT_FAILURE_RATE_THRESHOLD:.0%} of calls ended without connecting "
                f"(at least {CONNECT_FAILURE_MIN_CALLS} calls in 5 minutes). Check TURN (KVS throttles, "
                "the NAT gateway, the runtime security group's UDP/TCP egress) and the agent's "
                "call_ended log lines for the reasons."
            ),
            threshold=CONNECT_FAILURE_RATE_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.voice_error_alarm = self.voice_error_rate.create_alarm(
            self,
            "VoiceErrorRateAlarm",
            alarm_name=naming.alarm_name(stage_name, "voice-error-rate"),
            alarm_description=(
                f"More than {VOICE_ERROR_RATE_THRESHOLD:.0%} of Nova Sonic streams failed in 5 minutes. "
                "Check Bedrock quotas and model access, the model's service health in the region, and "
                "the agent's 'nova sonic stream' warnings in the application logs."
            ),
            threshold=VOICE_ERROR_RATE_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.invocation_error_alarm = self.invocation_errors.create_alarm(
            self,
            "InvocationErrorsAlarm",
            alarm_name=naming.alarm_name(stage_name, "invocation-errors"),
            alarm_description=(
                f"AgentCore answered at least {INVOCATION_ERRORS_THRESHOLD} runtime invocations with a "
                "system error in 5 minutes. Check the runtime's status, the application logs for "
                "internal_error lines and for containers that fail /ping, and recent deployments."
            ),
            threshold=INVOCATION_ERRORS_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = (self.connect_failure_alarm, self.voice_error_alarm, self.invocation_error_alarm)
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)

        # --- dashboard ---
        minute = Duration.minutes(1)
        live_seconds = self.sum(LIVE_CALL_SECONDS, period=minute)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=naming.dashboard_name(stage_name),
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
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
                    self.metric(CONNECT_TIME, statistic="p50", label="p50"),
                    self.metric(CONNECT_TIME, statistic="p90", label="p90"),
                ],
                left_y_axis=cloudwatch.YAxisProps(label="ms", show_units=False),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Calls",
                left=[
                    self.sum(CALLS_STARTED, label="started"),
                    self.sum(CALLS_ENDED, label="ended"),
                    self.sum(CALLS_FAILED_TO_CONNECT, label="failed to connect"),
                ],
                right=[self.connect_failure_rate],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Failed to connect, by reason",
                left=[self.by_reason(CALLS_FAILED_TO_CONNECT, stage_name)],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Calls ended, by reason",
                left=[self.by_reason(CALLS_ENDED, stage_name)],
                stacked=True,
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Call duration and audio quality",
                left=[
                    self.metric(CALL_DURATION, statistic="p50", label="duration p50 (s)"),
                    self.metric(CALL_DURATION, statistic="p90", label="duration p90 (s)"),
                ],
                right=[
                    self.sum(OUTPUT_UNDERRUNS, label="output underruns"),
                    self.sum(BARGE_INS, label="barge-ins"),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Voice (Nova Sonic) streams",
                left=[
                    self.sum(VOICE_STREAM_ERRORS, label="errors"),
                    self.sum(VOICE_RECONNECTS, label="reconnects"),
                    self.sum(VOICE_ROTATIONS, label="rotations"),
                    self.sum(VOICE_GIVE_UPS, label="gave up"),
                    self.sum(VOICE_STREAMS_OPENED, label="opened"),
                ],
                right=[self.voice_error_rate],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="TURN credentials (KVS)",
                left=[
                    self.sum(KVS_THROTTLES, label="throttles"),
                    self.sum(KVS_CREDENTIAL_FETCHES, label="fetches"),
                    self.sum(KVS_CREDENTIAL_CACHE_HITS, label="cache hits"),
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
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3)
        )

        stack = Stack.of(self)
        CfnOutput(
            stack,
            "DashboardUrl",
            value=(
                f"https://{stack.region}.console.aws.amazon.com/cloudwatch/home?region={stack.region}"
                f"#dashboards/dashboard/{naming.dashboard_name(stage_name)}"
            ),
        )

    def metric(self, name: str, *, statistic: str, label: str | None = None, **options) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=NAMESPACE,
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
                f'SEARCH(\'{{{NAMESPACE},EndReason,Stage}} MetricName="{name}" Stage="{stage_name}"\', '
                "'Sum', 300)"
            ),
            using_metrics={},
            label="",
            period=ALARM_PERIOD,
        )
