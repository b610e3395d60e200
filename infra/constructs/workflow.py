"""The render state machine: one STANDARD execution per render, named by the render id.

State names and paths are a contract with render_service.handlers.workflow and with the
local stack, which runs this synthesized definition.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs import acknowledge, default_policy, nag_text

# Our exception class names, which Lambda reports as the error name.
# PollRender/FinalizeRender: chunk outputs are not yet visible.
RENDER_NOT_READY = "RenderNotReady"
# DynamoDB transaction conflicts exhausted the function's own retries.
SERVICE_BUSY = "ServiceBusy"
# EventBridge refused an entry.
PUBLISH_FAILED = "PublishFailed"
# The team's Remotion function or bucket could not be reached (throttled, timed out).
REMOTION_UNAVAILABLE = "RemotionUnavailable"


class RenderWorkflow(Construct):
    """AcquireSlot -> StartRender -> (Wait -> PollRender)* -> FinalizeRender -> CompleteRender;
    a render StartRender makes whole (a remux, one chunk) goes from StartRender to CompleteRender.

    Any error -> RecordFailure, which either schedules a whole-render retry (Wait before retry ->
    AcquireSlot, the slot still held) or ends the render failed: the Fail state then shows the
    render's own error code and message in the console.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        acquire_slot: lambda_.IFunction,
        start_render: lambda_.IFunction,
        poll_render: lambda_.IFunction,
        finalize_render: lambda_.IFunction,
        complete_render: lambda_.IFunction,
        record_failure: lambda_.IFunction,
        timeout: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self._task_functions = (
            acquire_slot,
            start_render,
            poll_render,
            finalize_render,
            complete_render,
            record_failure,
        )

        acquire = self._invoke("AcquireSlot", acquire_slot, "$.slot")
        start = self._invoke("StartRender", start_render, "$.progress")
        poll = self._invoke("PollRender", poll_render, "$.progress")
        finalize = self._invoke("FinalizeRender", finalize_render, "$.output")
        # Its payload is the whole state: FinalizeRender's `$.output`, or StartRender's `$.progress.output`.
        complete = self._invoke("CompleteRender", complete_render, sfn.JsonPath.DISCARD)
        record = self._invoke("RecordFailure", record_failure, "$.failure")

        wait_for_slot = sfn.Wait(self, "Wait for slot", time=sfn.WaitTime.seconds_path("$.slot.waitSeconds"))
        wait_for_progress = sfn.Wait(
            self, "Wait for progress", time=sfn.WaitTime.seconds_path("$.progress.waitSeconds")
        )
        wait_for_retry = sfn.Wait(self, "Wait before retry", time=sfn.WaitTime.seconds_path("$.failure.waitSeconds"))
        slot_free = (
            sfn.Choice(self, "Slot free?")
            .when(sfn.Condition.boolean_equals("$.slot.acquired", True), start)
            .otherwise(wait_for_slot)
        )
        render_done = (
            sfn.Choice(self, "Render done?")
            .when(sfn.Condition.string_equals("$.progress.status", "made"), complete)
            .when(sfn.Condition.string_equals("$.progress.status", "done"), finalize)
            .otherwise(wait_for_progress)
        )
        failed = sfn.Fail(
            self,
            "Render failed",
            # The render's own code and message (also on the job), not a generic text.
            error_path="$.failure.code",
            cause_path="$.failure.message",
        )
        retry_render = (
            sfn.Choice(self, "Retry render?")
            .when(sfn.Condition.boolean_equals("$.failure.retry", True), wait_for_retry)
            .otherwise(failed)
        )

        for task in (poll, finalize):
            task.add_retry(
                errors=[RENDER_NOT_READY],
                interval=Duration.seconds(2),
                max_attempts=5,
                backoff_rate=1.5,
            )
        for task in (acquire, start, poll, complete, record):
            task.add_retry(errors=[SERVICE_BUSY], interval=Duration.seconds(1), max_attempts=4, backoff_rate=2)
        for task in (start, poll, finalize):
            task.add_retry(errors=[REMOTION_UNAVAILABLE], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
        complete.add_retry(errors=[PUBLISH_FAILED], interval=Duration.seconds(2), max_attempts=4, backoff_rate=2)
        for task in (acquire, start, poll, finalize, complete):
            task.add_catch(record, errors=[sfn.Errors.ALL], result_path="$.error")
        # RecordFailure is the last word on an attempt (retry, or refund and event): retry it before giving up.
        record.add_retry(errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
        record.next(retry_render)

        wait_for_slot.next(acquire)
        wait_for_retry.next(acquire)
        # A render StartRender made whole (a remux, one chunk) goes straight on to CompleteRender.
        start.next(render_done)
        wait_for_progress.next(poll)
        poll.next(render_done)
        finalize.next(complete)
        complete.next(sfn.Succeed(self, "Render succeeded"))
        definition = acquire.next(slot_free)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "RenderWorkflow",
            comment="One execution per render; the execution name is the render id",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )
        self._acknowledge_role_wildcards()

    def _invoke(self, name: str, function: lambda_.IFunction, result_path: str) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload_response_only=True,
            retry_on_service_exceptions=True,
            result_path=result_path,
        )

    def _acknowledge_role_wildcards(self) -> None:
        policy = default_policy(self.state_machine.role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing and CloudWatch Logs delivery (logs:*LogDelivery, DescribeResourcePolicies) "
            "do not support resource-level permissions.",
        )
        for function in self._task_functions:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{nag_text(self, function.function_arn)}:*]",
                "LambdaInvoke grants the task function and its versions (`<arn>:*`); nothing else.",
            )
