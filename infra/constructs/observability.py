"""Alarms (to an encrypted SNS topic) and an ops dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import METRICS_NAMESPACE, SERVICE_NAME

PERIOD = Duration.minutes(5)


class RenderObservability(Construct):
    """One alarm per failure signal, all notifying `topic`; `dashboard` shows the render pipeline."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        routed: frozenset[str],
        state_machine: sfn.IStateMachine,
        rest_api: apigw.RestApi,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer managed key: the AWS managed aws/sns key does not let CloudWatch publish.
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the render service's alarm topic",
            enable_key_rotation=True,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Render service alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.alarms: list[cloudwatch.Alarm] = []
        # A failed execution is usually a user's bad source (a metric, not a page): alarm only on the
        # failures that are ours (lifecycle.INTERNAL_CODES), which the functions count.
        self._alarm(
            "RendersFailedInternal",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="RendersFailedInternal",
                dimensions_map={"service": SERVICE_NAME},
                period=PERIOD,
                statistic="Sum",
            ),
            "Renders failed for an internal reason (a bug, a lost workflow); each was refunded",
        )
        self._alarm(
            "WorkflowTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            "Render executions hit the workflow timeout",
        )
        stage = rest_api.deployment_stage
        self._alarm(
            "Api5xx",
            stage.metric_server_error(period=PERIOD, statistic="Sum"),
            "The API answered 5XX",
        )
        for name, function in functions.items():
            if name in routed:
                # Its errors are caught by the workflow and end as a render's reason (counted above when ours).
                continue
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"The {name} function raised errors",
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    stage.metric_count(period=PERIOD, statistic="Sum"),
                    stage.metric_client_error(period=PERIOD, statistic="Sum"),
                    stage.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                right=[stage.metric_latency(period=PERIOD, statistic="p95")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Renders (executions)",
                left=[
                    state_machine.metric_started(period=PERIOD, statistic="Sum"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                right=[state_machine.metric_time(period=PERIOD, statistic="p95")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[f.metric_errors(period=PERIOD, statistic="Sum", label=n) for n, f in functions.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function duration p95",
                left=[f.metric_duration(period=PERIOD, statistic="p95", label=n) for n, f in functions.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function throttles",
                left=[f.metric_throttles(period=PERIOD, statistic="Sum", label=n) for n, f in functions.items()],
                width=8,
            ),
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24))

    def _alarm(self, construct_id: str, metric: cloudwatch.Metric, description: str) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
