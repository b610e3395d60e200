"""What the synthesized RenderService template must contain (a contract with the Lambda code and the local stack)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match, Template

from infra.constructs.functions import RenderLimits
from infra.constructs.layers import LayersNotBuiltError
from infra.stack import RenderServiceConfig, RenderServiceStack, cdk_json_context
from render_service.models.api import ADMIN_GROUP
from render_service.models.rates import RateWindow
from render_service.retention import TAG_KEY
from render_service.settings import Settings

HANDLERS = {
    "Api": "render_service.handlers.api.handler",
    "AcquireSlot": "render_service.handlers.workflow.acquire_slot",
    "StartRender": "render_service.handlers.workflow.start_render",
    "PollRender": "render_service.handlers.workflow.poll_render",
    "FinalizeRender": "render_service.handlers.workflow.finalize_render",
    "CompleteRender": "render_service.handlers.workflow.complete_render",
    "RecordFailure": "render_service.handlers.workflow.record_failure",
    "ChunkWorker": "render_service.handlers.chunk_worker.handler",
    "Reconcile": "render_service.handlers.workflow.reconcile",
    "SweepLostRenders": "render_service.handlers.workflow.sweep_lost_renders",
    "RemindExpiring": "render_service.handlers.reminders.remind_expiring",
    "SigningKeyGenerator": "render_service.handlers.signing_key.handler",
    "WebhookDeliverer": "render_service.handlers.webhooks.handler",
    "EmailNotifier": "render_service.handlers.emails.handler",
    "OutputDeliverer": "render_service.handlers.deliveries.handler",
}
FFMPEG_FUNCTIONS = {"StartRender", "FinalizeRender", "ChunkWorker"}
# Runs only while CloudFormation deploys (a custom resource), which reports its failures itself.
DEPLOY_TIME_FUNCTIONS = {"SigningKeyGenerator"}
WORKFLOW_FUNCTIONS = {
    "AcquireSlot",
    "StartRender",
    "PollRender",
    "FinalizeRender",
    "CompleteRender",
    "RecordFailure",
    "Reconcile",
    "SweepLostRenders",
    "RemindExpiring",
}
TASK_FUNCTIONS = WORKFLOW_FUNCTIONS - {"Reconcile", "SweepLostRenders", "RemindExpiring"}
# The functions that run ffmpeg on untrusted media: only these DynamoDB actions, only on job and chunk items.
RENDER_ITEM_ACTIONS = {
    "ChunkWorker": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"},
    "StartRender": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem"},
    "FinalizeRender": {"dynamodb:GetItem", "dynamodb:Query"},
    # Not ffmpeg, but it talks to the Internet on a user's behalf: it reads the job's webhook, nothing more.
    "WebhookDeliverer": {"dynamodb:GetItem"},
    "EmailNotifier": {"dynamodb:GetItem"},
    "OutputDeliverer": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
}
RENDER_ITEMS_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RENDER#*"]}}
COMMON_ENV = {"TABLE_NAME", "BUCKET_NAME", "EVENT_BUS_NAME", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
PROTECTED_ROUTES = {
    ("/renders", "GET"),
    ("/renders", "POST"),
    ("/renders/estimate", "POST"),
    ("/renders/cancel", "POST"),
    ("/renders/{renderId}", "GET"),
    ("/renders/{renderId}", "DELETE"),
    ("/renders/{renderId}/cancel", "POST"),
    ("/renders/{renderId}/download-url", "POST"),
    ("/quota", "GET"),
    ("/uploads", "POST"),
    ("/admin/renders", "GET"),
    ("/admin/renders/{renderId}", "GET"),
    ("/admin/renders/{renderId}/cancel", "POST"),
    ("/admin/users/{userId}/renders", "GET"),
}
PUBLIC_ROUTES = {("/health", "GET"), ("/openapi.json", "GET"), ("/docs", "GET")}


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {logical_id: dict(resource) for logical_id, resource in template.find_resources(type_).items()}


def only(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def functions_by_name(template: Template) -> dict[str, tuple[str, dict[str, Any]]]:
    """Function name (by handler) -> (logical id, properties)."""
    by_handler = {handler: name for name, handler in HANDLERS.items()}
    found = {}
    for logical_id, resource in resources(template, "AWS::Lambda::Function").items():
        props = resource["Properties"]
        found[by_handler[props["Handler"]]] = (logical_id, props)
    return found


def policy_statements(template: Template, function_logical_id: str, fn_props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = fn_props["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statements, f"no policy for {function_logical_id}"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_on(statements: list[dict[str, Any]], needle: str, *, also: str = "") -> set[str]:
    """Actions granted on any resource whose JSON mentions `needle` (and `also`)."""
    actions: set[str] = set()
    for statement in statements:
        texts = [json.dumps(resource) for resource in as_list(statement["Resource"])]
        if any(needle in text and also in text for text in texts):
            actions.update(as_list(statement["Action"]))
    return actions


def media_actions_on(statements: list[dict[str, Any]], prefix: str) -> set[str]:
    """Actions granted on a key prefix of the service bucket (not Remotion's, which has a renders/ too)."""
    return actions_on(statements, f"/{prefix}", also="DataBucket")


def only_media_bucket(template: Template) -> tuple[str, dict[str, Any]]:
    """The service bucket (inputs/, work/, renders/): the one with lifecycle rules and CORS."""
    media = {
        logical_id: bucket
        for logical_id, bucket in resources(template, "AWS::S3::Bucket").items()
        if "LifecycleConfiguration" in bucket["Properties"] and "CorsConfiguration" in bucket["Properties"]
    }
    assert len(media) == 1, sorted(media)
    return next(iter(media.items()))


def signing_key_secret(template: Template) -> str:
    """The CloudFront signing key's secret (the webhook secret is the other one)."""
    (logical_id,) = [
        k
        for k, r in resources(template, "AWS::SecretsManager::Secret").items()
        if r["Properties"]["Description"].startswith("Private key")
    ]
    return logical_id


def definition(template: Template) -> dict[str, Any]:
    """The state machine's ASL, with each `Fn::GetAtt [X, Arn]` replaced by `arn:X`."""
    _, machine = only(template, "AWS::StepFunctions::StateMachine")
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict):
        parts = body["Fn::Join"][1]
        body = "".join(part if isinstance(part, str) else f"arn:{part['Fn::GetAtt'][0]}" for part in parts)
    asl: dict[str, Any] = json.loads(body)
    return asl


# --- data ------------------------------------------------------------------------------


def test_table_is_on_demand_with_pitr_ttl_and_four_all_projected_gsis(template: Template) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["DeletionProtectionEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    gsis = {g["IndexName"]: g for g in props["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"GSI1", "GSI2", "GSI3", "GSI4"}
    for name, gsi in gsis.items():
        assert gsi["KeySchema"] == [
            {"AttributeName": f"{name}PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
        ]
        assert gsi["Projection"] == {"ProjectionType": "ALL"}
    attributes = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert attributes == dict.fromkeys(("PK", "SK", *(f"GSI{n}{k}" for n in range(1, 5) for k in ("PK", "SK"))), "S")


def test_media_bucket_is_private_encrypted_logged_with_lifecycle_and_cors(template: Template) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    _, media = only_media_bucket(template)
    props = media["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireWorkFiles"]["Prefix"] == "work/"
    assert rules["ExpireWorkFiles"]["ExpirationInDays"] == 2
    assert rules["ExpireInputs"]["Prefix"] == "inputs/"
    assert rules["ExpireInputs"]["ExpirationInDays"] == 30
    assert rules["ExpireInputs"]["Status"] == "Enabled"
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    cors = props["CorsConfiguration"]["CorsRules"][0]
    assert {"PUT", "GET"} <= set(cors["AllowedMethods"])
    assert cors["AllowedOrigins"] == ["*"]
    log_bucket_id = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert log_bucket_id in buckets


def test_both_buckets_deny_requests_without_tls(template: Template) -> None:
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_event_bus_name_is_derived_and_events_are_archived(template: Template) -> None:
    bus_id, bus = only(template, "AWS::Events::EventBus")
    assert bus["Properties"]["Name"].startswith("RenderService")  # generated by CDK, unique per stack
    _, archive = only(template, "AWS::Events::Archive")
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert archive["Properties"]["RetentionDays"] == 30


# --- functions -------------------------------------------------------------------------


def test_every_function_has_the_common_runtime_settings(template: Template) -> None:
    functions = functions_by_name(template)
    assert set(functions) == set(HANDLERS)
    code_keys = set()
    for name, (_, props) in functions.items():
        assert props["Runtime"] == "python3.12", name
        assert props["Architectures"] == ["x86_64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "render-service"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "RenderService"
        code_keys.add(json.dumps(props["Code"]))
    assert len(code_keys) == 1, "all functions share one code asset"


def test_function_log_groups_have_retention(template: Template) -> None:
    functions = functions_by_name(template)
    groups = resources(template, "AWS::Logs::LogGroup")
    for name, (_, props) in functions.items():
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id]["Properties"]["RetentionInDays"] == 30, name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Api", {"MemorySize": 512, "Timeout": 29, "EphemeralStorage": None, "layers": 1}),
        ("StartRender", {"MemorySize": 3008, "Timeout": 900, "EphemeralStorage": {"Size": 10240}, "layers": 2}),
        ("FinalizeRender", {"MemorySize": 3008, "Timeout": 900, "EphemeralStorage": {"Size": 10240}, "layers": 2}),
        ("ChunkWorker", {"MemorySize": 3008, "Timeout": 900, "EphemeralStorage": {"Size": 10240}, "layers": 2}),
        ("AcquireSlot", {"EphemeralStorage": None, "layers": 1}),
        ("PollRender", {"EphemeralStorage": None, "layers": 1}),
        ("RecordFailure", {"EphemeralStorage": None, "layers": 1}),
        ("CompleteRender", {"MemorySize": 256, "Timeout": 60, "EphemeralStorage": None, "layers": 1}),
    ],
)
def test_function_sizes_and_layers(template: Template, name: str, expected: dict[str, Any]) -> None:
    _, props = functions_by_name(template)[name]
    actual = {key: props.get(key) for key in expected if key != "layers"}
    actual["layers"] = len(props["Layers"])
    assert actual == expected


def test_environment_gives_each_function_only_what_it_needs(template: Template) -> None:
    env = {name: props["Environment"]["Variables"] for name, (_, props) in functions_by_name(template).items()}
    for name, variables in env.items():
        assert set(variables) >= COMMON_ENV, name
        assert ("STATE_MACHINE_ARN" in variables) == (name == "Api"), name
        assert ("CHUNK_FUNCTION_NAME" in variables) == (name in {"StartRender", "PollRender"}), name
        assert ("FFMPEG_PATH" in variables) == (name in FFMPEG_FUNCTIONS), name
        assert ("POLL_INTERVAL_SECONDS" in variables) == (name in WORKFLOW_FUNCTIONS), name
        assert ("CREDITS_ENABLED" in variables) == (name in WORKFLOW_FUNCTIONS | {"Api"}), name
    for name in FFMPEG_FUNCTIONS:
        assert env[name]["FFMPEG_PATH"] == "/opt/bin/ffmpeg"
        assert env[name]["FONT_DIR"] == "/opt/fonts"
        assert env[name]["ALLOWED_SOURCE_BUCKETS"] == "team-footage,stock.clips"
    assert env["Api"]["ALLOWED_SOURCE_BUCKETS"] == "team-footage,stock.clips"
    assert env["Api"]["CORS_ALLOWED_ORIGINS"] == "*"
    quota = {
        "RATE_LIMITS": '[{"limit":5,"seconds":3600}]',
        "MAX_ACTIVE_RENDERS": "3",
        "MAX_QUEUED_RENDERS": "10",
        "INITIAL_CREDITS": "100",
        "CREDITS_ENABLED": "true",
        "ALLOW_HIGH_RESOLUTION": "false",
    }
    for name in WORKFLOW_FUNCTIONS | {"Api"}:
        assert {key: env[name][key] for key in quota} == quota, name
    assert env["PollRender"]["POLL_INTERVAL_SECONDS"] == "5"
    assert env["AcquireSlot"]["SLOT_WAIT_SECONDS"] == "10"
    chunk_id, _ = functions_by_name(template)["ChunkWorker"]
    assert env["StartRender"]["CHUNK_FUNCTION_NAME"] == {"Ref": chunk_id}
    settling = [
        {k: v for k, v in env[name].items() if not k.startswith("REMOTION_")}
        for name in ("CompleteRender", "RecordFailure")
    ]
    assert settling[0] == settling[1], "CompleteRender settles like RecordFailure: the same settings"


def test_chunk_worker_async_invokes_are_not_retried_by_lambda(template: Template) -> None:
    chunk_id, _ = functions_by_name(template)["ChunkWorker"]
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": chunk_id}, "MaximumRetryAttempts": 0, "Qualifier": "$LATEST"},
    )


def test_layers_target_python312_and_the_architecture(template: Template) -> None:
    layers = resources(template, "AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


# --- IAM -------------------------------------------------------------------------------


def test_api_may_start_and_stop_only_its_state_machine_executions(template: Template) -> None:
    functions = functions_by_name(template)
    api_id, api = functions["Api"]
    statements = policy_statements(template, api_id, api)
    machine_id, _ = only(template, "AWS::StepFunctions::StateMachine")
    start = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
    assert [s["Resource"] for s in start] == [{"Ref": machine_id}]
    stop = [s for s in statements if "states:StopExecution" in as_list(s["Action"])]
    assert len(stop) == 1
    stop_arn = json.dumps(stop[0]["Resource"])
    assert ":execution:" in stop_arn
    assert machine_id in stop_arn
    assert stop_arn.endswith(':*"]]}')
    assert "events:PutEvents" in actions_on(statements, "NotificationsBus")


def test_bucket_access_is_scoped_to_key_prefixes(template: Template) -> None:
    functions = functions_by_name(template)
    expected = {
        "Api": {"renders/*": {"read", "delete"}, "inputs/*": {"put"}},
        "ChunkWorker": {"work/*": {"read", "put"}},
        "StartRender": {"inputs/*": {"read"}, "work/*": {"read", "put"}, "renders/*": {"put"}},
        "PollRender": {},
        "FinalizeRender": {"work/*": {"read"}, "renders/*": {"put"}},
        "CompleteRender": {"renders/*": {"read", "delete"}, "work/*": {"delete"}},
        "RecordFailure": {"work/*": {"delete"}, "renders/*": {"read", "delete"}},
        "Reconcile": {"renders/*": {"delete"}},
        "AcquireSlot": {},
    }
    for name, patterns in expected.items():
        logical_id, props = functions[name]
        statements = policy_statements(template, logical_id, props)
        s3_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("s3:")}
        assert "s3:*" not in s3_actions
        for statement in statements:
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                if "DataBucket" in text and "/" in text:
                    assert any(f"/{p}" in text for p in patterns), f"{name}: unexpected object scope {text}"
        for pattern, kinds in patterns.items():
            actions = media_actions_on(statements, pattern)
            assert ("s3:GetObject*" in actions) == ("read" in kinds), (name, pattern)
            assert ("s3:PutObject" in actions) == ("put" in kinds), (name, pattern)
            assert ("s3:DeleteObject*" in actions) == ("delete" in kinds), (name, pattern)


def test_api_cannot_write_render_outputs(template: Template) -> None:
    logical_id, props = functions_by_name(template)["Api"]
    statements = policy_statements(template, logical_id, props)
    writes = {a for a in media_actions_on(statements, "renders/*") if a.startswith("s3:Put")}
    assert writes == set()
    assert "s3:PutObject" in media_actions_on(statements, "inputs/*")


def test_clearing_work_files_and_listing_are_granted_to_complete_and_record_failure(template: Template) -> None:
    """Both clear work/<id>/ (ListBucket + DeleteObject); only CompleteRender deletes an orphaned output."""
    functions = functions_by_name(template)
    bucket_id, _ = only_media_bucket(template)
    for name, (logical_id, props) in functions.items():
        statements = policy_statements(template, logical_id, props)
        deletes_work = "s3:DeleteObject*" in media_actions_on(statements, "work/*")
        assert deletes_work == (name in {"CompleteRender", "RecordFailure"}), name
        if deletes_work:
            lists = {
                a
                for s in statements
                if {"Fn::GetAtt": [bucket_id, "Arn"]} in as_list(s["Resource"])
                for a in as_list(s["Action"])
            }
            assert "s3:List*" in lists, name


def test_functions_that_announce_success_may_read_the_output_they_presign(template: Template) -> None:
    """A presigned GET works only if the signing role may GetObject; RecordFailure re-announces a completed render."""
    for name in ("Api", "CompleteRender", "RecordFailure"):
        logical_id, props = functions_by_name(template)[name]
        assert "s3:GetObject*" in media_actions_on(policy_statements(template, logical_id, props), "renders/*"), name


def test_only_the_announcing_functions_may_put_events(template: Template) -> None:
    for name, (logical_id, props) in functions_by_name(template).items():
        may_put = "events:PutEvents" in actions_on(policy_statements(template, logical_id, props), "NotificationsBus")
        assert may_put == (
            name not in {"ChunkWorker", "FinalizeRender", "WebhookDeliverer", "EmailNotifier", *DEPLOY_TIME_FUNCTIONS}
        ), name


def test_no_wildcard_resource_except_xray_and_log_delivery(template: Template) -> None:
    allowed = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for logical_id, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= allowed, logical_id


def test_only_start_and_poll_may_invoke_the_chunk_worker(template: Template) -> None:
    functions = functions_by_name(template)
    chunk_id, _ = functions["ChunkWorker"]
    for name, (logical_id, props) in functions.items():
        may_invoke = "lambda:InvokeFunction" in actions_on(policy_statements(template, logical_id, props), chunk_id)
        assert may_invoke == (name in {"StartRender", "PollRender"}), name


def test_trusted_functions_share_the_table_and_allowed_source_buckets_are_readable(template: Template) -> None:
    functions = functions_by_name(template)
    for name, (logical_id, props) in functions.items():
        statements = policy_statements(template, logical_id, props)
        if name in DEPLOY_TIME_FUNCTIONS:
            assert not actions_on(statements, "DataTable"), name
        elif name not in RENDER_ITEM_ACTIONS:
            assert {"dynamodb:UpdateItem", "dynamodb:PutItem"} <= actions_on(statements, "DataTable"), name
            assert actions_on(statements, "/index/*"), f"{name}: queries the GSIs"
        readable = actions_on(statements, "team-footage")
        assert ("s3:GetObject*" in readable) == (name in FFMPEG_FUNCTIONS), name


@pytest.mark.parametrize("name", sorted(RENDER_ITEM_ACTIONS))
def test_ffmpeg_functions_reach_only_render_items_with_listed_actions(template: Template, name: str) -> None:
    """An exploit in a crafted media file must not reach credits, counters or other users' items."""
    logical_id, props = functions_by_name(template)[name]
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    statements = [
        s
        for s in policy_statements(template, logical_id, props)
        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert len(statements) == 1, statements
    (statement,) = statements
    actions = set(as_list(statement["Action"]))
    assert actions == RENDER_ITEM_ACTIONS[name]
    assert not actions & {"dynamodb:*", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems", "dynamodb:Scan"}
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [table_id, "Arn"]}], "the table only, no index"
    assert statement["Condition"] == RENDER_ITEMS_ONLY


def test_the_render_items_condition_is_only_on_the_ffmpeg_functions(template: Template) -> None:
    for name, (logical_id, props) in functions_by_name(template).items():
        conditioned = [s for s in policy_statements(template, logical_id, props) if s.get("Condition")]
        assert bool(conditioned) == (name in RENDER_ITEM_ACTIONS), name


# --- workflow --------------------------------------------------------------------------


def test_state_machine_is_standard_traced_logged_and_bounded(template: Template) -> None:
    _, machine = only(template, "AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert definition(template)["TimeoutSeconds"] == 7200
    assert "QueryLanguage" not in definition(template)


def test_workflow_states_and_paths_match_the_lambda_contract(template: Template) -> None:
    asl = definition(template)
    states = asl["States"]
    fns = {name: f"arn:{logical_id}" for name, (logical_id, _) in functions_by_name(template).items()}
    assert asl["StartAt"] == "AcquireSlot"
    assert set(states) == {
        "AcquireSlot",
        "Slot free?",
        "Wait for slot",
        "StartRender",
        "Wait for progress",
        "PollRender",
        "Render done?",
        "FinalizeRender",
        "CompleteRender",
        "Render succeeded",
        "RecordFailure",
        "Retry render?",
        "Wait before retry",
        "Render failed",
    }
    tasks = {
        "AcquireSlot": ("$.slot", "Slot free?"),
        "StartRender": ("$.progress", "Render done?"),
        "PollRender": ("$.progress", "Render done?"),
        "FinalizeRender": ("$.output", "CompleteRender"),
        "CompleteRender": (None, "Render succeeded"),  # JsonPath.DISCARD; its payload includes $.output
    }
    for name, (result_path, next_state) in tasks.items():
        state = states[name]
        assert state["Type"] == "Task"
        assert state["Resource"] == fns[name], "payload_response_only: the function ARN is the resource"
        assert "Parameters" not in state, "the whole state input is the payload"
        assert state["ResultPath"] == result_path
        assert state["Next"] == next_state
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
        assert any("Lambda.ServiceException" in r["ErrorEquals"] for r in state["Retry"]), name

    assert states["Slot free?"]["Choices"] == [
        {"Variable": "$.slot.acquired", "BooleanEquals": True, "Next": "StartRender"}
    ]
    assert states["Slot free?"]["Default"] == "Wait for slot"
    assert states["Wait for slot"] == {"Type": "Wait", "SecondsPath": "$.slot.waitSeconds", "Next": "AcquireSlot"}
    assert states["Wait for progress"] == {
        "Type": "Wait",
        "SecondsPath": "$.progress.waitSeconds",
        "Next": "PollRender",
    }
    assert states["Render done?"]["Choices"] == [
        {"Variable": "$.progress.status", "StringEquals": "made", "Next": "CompleteRender"},
        {"Variable": "$.progress.status", "StringEquals": "done", "Next": "FinalizeRender"},
    ]
    assert states["Render done?"]["Default"] == "Wait for progress"
    not_ready = {"ErrorEquals": ["RenderNotReady"], "IntervalSeconds": 2, "MaxAttempts": 5, "BackoffRate": 1.5}
    busy = {"ErrorEquals": ["ServiceBusy"], "IntervalSeconds": 1, "MaxAttempts": 4, "BackoffRate": 2}
    publish = {"ErrorEquals": ["PublishFailed"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2}
    everything = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}
    remotion = {"ErrorEquals": ["RemotionUnavailable"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}
    own_retries = {
        "AcquireSlot": [busy],
        "StartRender": [busy, remotion],
        "PollRender": [not_ready, busy, remotion],
        "FinalizeRender": [not_ready, remotion],
        "CompleteRender": [busy, publish],
        "RecordFailure": [busy, everything],
    }
    for name, expected in own_retries.items():
        retries = states[name]["Retry"]
        assert [r for r in retries if not r["ErrorEquals"][0].startswith("Lambda.")] == expected, name

    record = states["RecordFailure"]
    assert record["Resource"] == fns["RecordFailure"]
    assert record["ResultPath"] == "$.failure"
    assert record["Next"] == "Retry render?"
    assert "Catch" not in record
    assert record["Retry"][-1] == everything, "States.ALL must be the last retrier"
    # A whole-render retry waits, then queues for the (still held) slot again.
    assert states["Retry render?"]["Choices"] == [
        {"Variable": "$.failure.retry", "BooleanEquals": True, "Next": "Wait before retry"}
    ]
    assert states["Retry render?"]["Default"] == "Render failed"
    assert states["Wait before retry"] == {
        "Type": "Wait",
        "SecondsPath": "$.failure.waitSeconds",
        "Next": "AcquireSlot",
    }
    # Ops see the render's own error in the console, not a generic text.
    assert states["Render failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.failure.code",
        "CausePath": "$.failure.message",
    }
    assert states["Render succeeded"] == {"Type": "Succeed"}


def test_state_machine_may_invoke_exactly_the_task_functions(template: Template) -> None:
    _, machine = only(template, "AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invocable = {
        json.dumps(resource)
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    functions = functions_by_name(template)
    for name, (logical_id, _) in functions.items():
        assert any(logical_id in resource for resource in invocable) == (name in TASK_FUNCTIONS), name


# --- API -------------------------------------------------------------------------------


def api_methods(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    resources_ = resources(template, "AWS::ApiGateway::Resource")
    _, rest_api = only(template, "AWS::ApiGateway::RestApi")

    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:  # the root resource
            return ""
        resource = resources_[ref["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    methods = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        methods[(path_of(props["ResourceId"]) or "/", props["HttpMethod"])] = props
    assert rest_api
    return methods


def test_every_route_is_cognito_protected_except_health_and_docs(template: Template) -> None:
    methods = api_methods(template)
    authorizer_id, authorizer = only(template, "AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    routes = {key for key in methods if key[1] != "OPTIONS"}
    assert routes == PROTECTED_ROUTES | PUBLIC_ROUTES
    api_fn_id, _ = functions_by_name(template)["Api"]
    for route in PROTECTED_ROUTES:
        assert methods[route]["AuthorizationType"] == "COGNITO_USER_POOLS", route
        assert methods[route]["AuthorizerId"] == {"Ref": authorizer_id}, route
    for route in PUBLIC_ROUTES:
        assert methods[route]["AuthorizationType"] == "NONE", route
    for route in routes:
        integration = methods[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert api_fn_id in json.dumps(integration["Uri"]), route
    preflight = {path for path, method in methods if method == "OPTIONS"}
    assert {path for path, _ in routes} <= preflight


def test_stage_is_traced_access_logged_and_throttled(template: Template) -> None:
    _, stage = only(template, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]
    assert json.loads(props["AccessLogSetting"]["Format"])["requestId"] == "$context.requestId"
    settings = props["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == 50
    assert settings["ThrottlingBurstLimit"] == 100
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False


def test_user_pool_is_admin_only_with_a_strong_password_policy(template: Template) -> None:
    _, pool = only(template, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    template.has_resource_properties("AWS::Cognito::UserPoolClient", {"GenerateSecret": False})


def test_the_admins_group_is_in_the_user_pool(template: Template) -> None:
    pool_id, _ = only(template, "AWS::Cognito::UserPool")
    _, group = only(template, "AWS::Cognito::UserPoolGroup")
    assert group["Properties"]["GroupName"] == ADMIN_GROUP  # the name the API function checks
    assert group["Properties"]["UserPoolId"] == {"Ref": pool_id}


def test_gateway_errors_come_in_the_error_shape_with_cors(template: Template) -> None:
    """What API Gateway answers itself (the authorizer's 401, throttling, unknown routes) is what
    /openapi.json documents: `{"error": {code, message, details}}`, readable by the browser."""
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == {
        "UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "REQUEST_TOO_LARGE", "DEFAULT_4XX", "DEFAULT_5XX"
    }  # fmt: skip
    for kind, props in responses.items():
        assert props["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
        # API Gateway substitutes $context.error.* with JSON-quoted strings.
        body = props["ResponseTemplates"]["application/json"]
        body = body.replace("$context.error.messageString", '"Unauthorized"').replace(
            "$context.error.responseType", kind
        )
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "details"}, kind
    assert (
        json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])["error"]["code"]
        == "UNAUTHORIZED"
    )
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


# --- observability ---------------------------------------------------------------------


ROUTED_TASKS = {"AcquireSlot", "StartRender", "PollRender", "FinalizeRender", "CompleteRender"}


def test_alarms_page_only_where_ops_must_act_and_notify_the_topic(template: Template) -> None:
    topic_id, topic = only(template, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert {
        ("RenderService", "RendersFailedInternal"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Errors"),
    } <= metrics
    # A user's bad source fails its execution: that is a metric on the dashboard, never a page.
    assert ("AWS/States", "ExecutionsFailed") not in metrics
    internal = next(a for a in alarms if a["Properties"]["MetricName"] == "RendersFailedInternal")
    assert internal["Properties"]["Dimensions"] == [{"Name": "service", "Value": "render-service"}]
    function_alarms = [a for a in alarms if a["Properties"]["MetricName"] == "Errors"]
    alarmed = {json.dumps(a["Properties"]["Dimensions"]) for a in function_alarms}
    for name, (logical_id, _) in functions_by_name(template).items():
        expected = name not in DEPLOY_TIME_FUNCTIONS and name not in ROUTED_TASKS
        assert any(logical_id in dims for dims in alarmed) == expected, name
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": topic_id}}
    )


def test_alarm_topic_enforces_tls_and_its_key_rotates(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


# --- outputs and configuration ---------------------------------------------------------


def test_synth_raises_no_cdk_warnings_or_errors(stack: RenderServiceStack, template: Template) -> None:
    annotations = Annotations.from_stack(stack)
    messages = [*annotations.find_error("*", Match.any_value()), *annotations.find_warning("*", Match.any_value())]
    assert messages == []


def test_outputs_have_pinned_ids(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert set(outputs) == {
        "ApiUrl",
        "TableName",
        "BucketName",
        "EventBusName",
        "DownloadDomain",
        "StateMachineArn",
        "UserPoolId",
        "UserPoolClientId",
        "WebhookSecretArn",
    }
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    machine_id, _ = only(template, "AWS::StepFunctions::StateMachine")
    assert outputs["TableName"]["Value"] == {"Ref": table_id}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": machine_id}


def test_context_switches_architecture_retention_and_optional_parts(build_stack: Any) -> None:
    template = Template.from_stack(
        build_stack(
            {
                "architecture": "arm64",
                "allowedSourceBuckets": [],
                "alarmEmail": "",
                "retainData": False,
                "inputsRetentionDays": 7,
                "corsAllowedOrigins": ["https://app.example", "https://admin.example"],
                "remotionFunctionName": "",
                "remotionServeUrl": "",
                "remotionBucket": "",
            }
        )
    )
    # The function answers CORS for the same origins as API Gateway's preflight.
    api_env = functions_by_name(template)["Api"][1]["Environment"]["Variables"]
    assert api_env["CORS_ALLOWED_ORIGINS"] == "https://app.example,https://admin.example"
    for name, (logical_id, props) in functions_by_name(template).items():
        assert props["Architectures"] == ["arm64"], name
        assert props["Environment"]["Variables"].get("ALLOWED_SOURCE_BUCKETS", "") == "", name
        statements = policy_statements(template, logical_id, props)
        assert not actions_on(statements, "team-footage"), name
        # Without a Remotion deployment nobody may reach one, and the functions know none.
        assert not actions_on(statements, "remotion"), name
        assert not {k for k in props["Environment"]["Variables"] if k.startswith("REMOTION_")}, name
    for layer in resources(template, "AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    _, table = only(template, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    template.resource_count_is("AWS::SNS::Subscription", 0)
    _, bucket = only_media_bucket(template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireInputs"]["ExpirationInDays"] == 7


def retention_settings(env: dict[str, Any]) -> Settings:
    """What a function's settings make of the retention variables the stack gave it."""
    names = ("OUTPUT_RETENTION_DAYS", "RETENTION_CLASSES", "EXPIRY_REMINDER_HOURS")
    assert set(names) <= set(env)
    return Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b", **{n: env[n] for n in names}})


def test_outputs_expire_by_lifecycle_rules_one_per_retention_class(template: Template) -> None:
    _, bucket = only_media_bucket(template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    for days in (7, 30):
        rule = rules[f"ExpireRenders{days}Days"]
        assert rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == days
        # The tag CompleteRender sets (render_service.retention), only under renders/.
        assert rule["Prefix"] == "renders/"
        assert rule["TagFilters"] == [{"Key": TAG_KEY, "Value": str(days)}]
    # Untagged outputs (from before retention) go too, after the longest class, never sooner.
    backstop = rules["ExpireUntaggedRenders"]
    assert (backstop["Prefix"], backstop["ExpirationInDays"], "TagFilters" in backstop) == ("renders/", 30, False)
    # The functions keep outputs under the same classes the rules expire.
    env = functions_by_name(template)["CompleteRender"][1]["Environment"]["Variables"]
    settings = retention_settings(env)
    assert settings.retention_day_classes == (7, 30)
    assert settings.expiry_reminder_hours == 48


def test_only_complete_render_tags_outputs_and_the_reminder_runs_hourly(template: Template) -> None:
    functions = functions_by_name(template)
    for name, (logical_id, props) in functions.items():
        statements = policy_statements(template, logical_id, props)
        tagging = {
            json.dumps(resource)
            for s in statements
            if "s3:PutObjectTagging" in as_list(s["Action"])
            for resource in as_list(s["Resource"])
        }
        if name == "CompleteRender":
            assert len(tagging) == 1
            assert "/renders/*" in next(iter(tagging))
            assert {"s3:PutObject"}.isdisjoint(actions_on(statements, "/renders/*"))
        elif name not in {"FinalizeRender", "ChunkWorker", "StartRender", "Api"}:  # grant_put includes tagging
            assert not tagging, name
    reminder_id = functions["RemindExpiring"][0]
    schedules = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if reminder_id in json.dumps(rule["Properties"].get("Targets", []))
    ]
    assert [s["ScheduleExpression"] for s in schedules] == ["rate(1 hour)"]


def test_retention_context_sets_the_rules_and_the_functions_settings(build_stack: Any) -> None:
    context = {"outputRetentionDays": 3, "retentionClasses": [14, 90], "expiryReminderHours": 12}
    template = Template.from_stack(build_stack(context))
    _, bucket = only_media_bucket(template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert {i: r["ExpirationInDays"] for i, r in rules.items() if i.startswith("ExpireRenders")} == {
        "ExpireRenders3Days": 3,
        "ExpireRenders14Days": 14,
        "ExpireRenders90Days": 90,
    }
    assert rules["ExpireUntaggedRenders"]["ExpirationInDays"] == 90
    env = functions_by_name(template)["RemindExpiring"][1]["Environment"]["Variables"]
    settings = retention_settings(env)
    assert (settings.retention_day_classes, settings.expiry_reminder_hours) == ((3, 14, 90), 12)
    from_cli = RenderServiceConfig.from_context(App(context={"retentionClasses": "14, 90"}))
    assert from_cli.output_retention.classes == (14, 90)
    with pytest.raises(ValueError, match="retentionClasses"):
        RenderServiceConfig.from_context(App(context={"retentionClasses": [0]}))


def test_missing_layers_fail_with_a_hint_to_build_them(tmp_path: Any) -> None:
    app = App(context=cdk_json_context())
    config = RenderServiceConfig(layers_dir=tmp_path)
    with pytest.raises(LayersNotBuiltError, match=r"make layers ARCH=x86_64"):
        RenderServiceStack(app, "RenderService", config=config)


def test_layers_built_for_another_arch_are_refused(make_layers: Any) -> None:
    layers = make_layers("arm64")
    (layers / "ffmpeg-x86_64" / "bin").mkdir(parents=True)
    (layers / "ffmpeg-x86_64" / "bin" / "ffmpeg").write_text("")
    app = App(context=cdk_json_context())
    config = RenderServiceConfig(architecture="x86_64", layers_dir=layers)
    with pytest.raises(LayersNotBuiltError, match="built for arm64"):
        RenderServiceStack(app, "RenderService", config=config)


def test_context_values_from_the_command_line_are_parsed() -> None:
    app = App(
        context={
            "architecture": "arm64",
            "allowedSourceBuckets": "a-bucket, b-bucket",
            "creditsEnabled": "false",
            "maxActiveRenders": "7",
            "retainData": "false",
            "inputsRetentionDays": "14",
        }
    )
    config = RenderServiceConfig.from_context(app)
    assert config.architecture == "arm64"
    assert config.allowed_source_buckets == ("a-bucket", "b-bucket")
    assert config.limits.credits_enabled is False
    assert config.limits.max_active_renders == 7
    assert config.retain_data is False
    assert config.alarm_email is None
    assert config.inputs_retention_days == 14
    assert RenderServiceConfig.from_context(App()).inputs_retention_days == 30


def test_rate_limits_context_is_a_list_of_windows_that_the_functions_read() -> None:
    windows = [{"limit": 20, "seconds": 86400}, {"limit": 5, "seconds": 3600}]
    config = RenderServiceConfig.from_context(App(context={"rateLimits": windows}))
    env = config.limits.quota_env()["RATE_LIMITS"]
    assert json.loads(env) == sorted(windows, key=lambda w: w["seconds"])
    # The functions' settings parse exactly what the stack writes.
    settings = Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b", "RATE_LIMITS": env})
    assert settings.rate_limits == config.limits.rate_limits
    # `cdk -c rateLimits='[...]'` passes JSON text.
    from_cli = RenderServiceConfig.from_context(App(context={"rateLimits": json.dumps(windows)}))
    assert from_cli.limits.rate_limits == config.limits.rate_limits


def test_rate_limit_defaults_agree_between_cdk_json_the_stack_and_the_settings() -> None:
    from_cdk_json = RenderServiceConfig.from_context(App(context=cdk_json_context())).limits.rate_limits
    settings = Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b"})
    assert from_cdk_json == RenderLimits().rate_limits == settings.rate_limits == (RateWindow(limit=5, seconds=3600),)


def test_the_old_single_window_context_keys_still_deploy_one_window() -> None:
    old = RenderServiceConfig.from_context(App(context={"rateLimitRenders": 5, "rateLimitWindowSeconds": 86400}))
    assert old.limits.rate_limits == (RateWindow(limit=5, seconds=86400),)
    half = RenderServiceConfig.from_context(App(context={"rateLimitRenders": "8"}))
    assert half.limits.rate_limits == (RateWindow(limit=8, seconds=3600),)
    with pytest.raises(ValueError, match="set only rateLimits"):
        RenderServiceConfig.from_context(
            App(context={"rateLimits": [{"limit": 5, "seconds": 3600}], "rateLimitRenders": 5})
        )


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ([], "at least one window"),
        ([{"limit": 5, "seconds": 3600}, {"limit": 9, "seconds": 3600}], "may appear once"),
        ([{"limit": 0, "seconds": 3600}], r"0\.limit"),
        ([{"limit": 5}], r"0\.seconds"),
        ([{"limit": 5, "seconds": 3600, "burst": 2}], r"0\.burst"),
        ([{"limit": 1, "seconds": s} for s in range(1, 7)], "at most 5"),
        ("5 an hour", "JSON list"),
    ],
)
def test_a_bad_rate_policy_fails_the_synth_naming_the_problem(windows: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"context rateLimits: .*{message}"):
        RenderServiceConfig.from_context(App(context={"rateLimits": windows}))


@pytest.mark.parametrize("days", [0, -1])
def test_inputs_retention_must_be_positive(days: int) -> None:
    with pytest.raises(ValueError, match="inputsRetentionDays"):
        RenderServiceConfig.from_context(App(context={"inputsRetentionDays": days}))


def test_unknown_architecture_is_rejected() -> None:
    with pytest.raises(ValueError, match="architecture"):
        RenderServiceConfig.from_context(App(context={"architecture": "sparc"}))


def test_executions_ending_outside_the_workflow_reach_reconcile(template: Template) -> None:
    reconcile_id, _ = functions_by_name(template)["Reconcile"]
    rules = template.find_resources(
        "AWS::Events::Rule",
        {
            "Properties": {
                "EventPattern": {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}
            }
        },
    )
    assert len(rules) == 1
    (rule,) = rules.values()
    assert sorted(rule["Properties"]["EventPattern"]["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [reconcile_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_lost_submissions_are_swept_on_a_schedule(template: Template) -> None:
    sweep_id, _ = functions_by_name(template)["SweepLostRenders"]
    rules = template.find_resources("AWS::Events::Rule", {"Properties": {"ScheduleExpression": "rate(5 minutes)"}})
    assert len(rules) == 1
    (rule,) = rules.values()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]}


# --- downloads (CloudFront signed URLs) ----------------------------------------------------


def test_downloads_go_through_cloudfront_to_renders_only_and_need_a_signature(template: Template) -> None:
    _, distribution = only(template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginPath"] == "/renders"
    assert "OriginAccessControlId" in origin
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    key_group_id, key_group = only(template, "AWS::CloudFront::KeyGroup")
    assert behavior["TrustedKeyGroups"] == [{"Ref": key_group_id}]
    assert "CacheBehaviors" not in config  # no path that skips the signature
    public_key_id, public_key = only(template, "AWS::CloudFront::PublicKey")
    assert key_group["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": public_key_id}]
    # The public key comes from the key pair generated in the account; the template holds no key.
    key_pair_id, key_pair = only(template, "Custom::CloudFrontSigningKey")
    assert public_key["Properties"]["PublicKeyConfig"]["EncodedKey"] == {"Fn::GetAtt": [key_pair_id, "PublicKey"]}
    secret_id = signing_key_secret(template)
    assert key_pair["Properties"]["SecretArn"] == {"Ref": secret_id}
    assert "BEGIN" not in json.dumps(template.to_json())


def test_cloudfront_may_read_renders_and_nothing_else_in_the_bucket(template: Template) -> None:
    bucket_id, _ = only_media_bucket(template)
    distribution_id, _ = only(template, "AWS::CloudFront::Distribution")
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    cloudfront = [
        s
        for statements in policies
        for s in statements
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert len(cloudfront) == 1
    (statement,) = cloudfront
    assert statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/renders/*"]]}
    assert distribution_id in json.dumps(statement["Condition"]["StringEquals"]["AWS:SourceArn"])


def test_the_functions_that_hand_out_links_sign_them_with_the_stacks_key(template: Template) -> None:
    functions = functions_by_name(template)
    secret_id = signing_key_secret(template)
    for name, (logical_id, props) in functions.items():
        env = props["Environment"]["Variables"]
        signs = name in {"Api", "CompleteRender", "RecordFailure", "RemindExpiring", "EmailNotifier"}
        assert ("CDN_DOMAIN" in env) == signs, name
        reads_secret = any(
            "secretsmanager:GetSecretValue" in json.dumps(s.get("Action")) and secret_id in json.dumps(s["Resource"])
            for s in policy_statements(template, logical_id, props)
        )
        assert reads_secret == (signs or name == "SigningKeyGenerator"), name
        if signs:
            assert env["CDN_PRIVATE_KEY_SECRET"] == {"Ref": secret_id}
    generator = policy_statements(template, *functions["SigningKeyGenerator"])
    assert not any("dynamodb" in json.dumps(s["Action"]) or "s3:" in json.dumps(s["Action"]) for s in generator)
    assert "DownloadDomain" in template.to_json()["Outputs"]


# --- remotion --------------------------------------------------------------------------

REMOTION_FUNCTION = "remotion-render-4-0-0-mem2048mb-disk2048mb-120sec"
REMOTION_BUCKET = "remotionlambda-eucentral1-abc123"
REMOTION_USERS = {"Api", "StartRender", "PollRender", "FinalizeRender", "RecordFailure", "Reconcile"}


def test_remotion_settings_reach_only_the_functions_that_speak_to_it(template: Template) -> None:
    for name, (_, props) in functions_by_name(template).items():
        variables = props["Environment"]["Variables"]
        remotion = {k: v for k, v in variables.items() if k.startswith("REMOTION_")}
        if name not in REMOTION_USERS:
            assert remotion == {}, name
            continue
        assert remotion == {
            "REMOTION_FUNCTION_NAME": REMOTION_FUNCTION,
            "REMOTION_SERVE_URL": (
                "https://remotionlambda-eucentral1-abc123.s3.eu-central-1.amazonaws.com/sites/app/index.html"
            ),
            "REMOTION_BUCKET": REMOTION_BUCKET,
            "REMOTION_REGION": "eu-central-1",
            "REMOTION_VERSION": "4.0.0",
        }, name
        settings = Settings.model_validate({**remotion, "TABLE_NAME": "t", "BUCKET_NAME": "b"})
        assert settings.remotion_configured, name


def test_only_start_and_poll_invoke_remotion_and_only_its_one_function(template: Template) -> None:
    for name, (logical_id, props) in functions_by_name(template).items():
        statements = policy_statements(template, logical_id, props)
        invoked = [
            json.dumps(resource)
            for statement in statements
            if "lambda:InvokeFunction" in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
            if "remotion" in json.dumps(resource)
        ]
        if name in {"StartRender", "PollRender"}:
            assert len(invoked) == 1, name
            assert "eu-central-1:" in invoked[0], invoked
            assert invoked[0].endswith(f':function:{REMOTION_FUNCTION}"]]}}'), invoked
        else:
            assert invoked == [], name


def test_remotion_bucket_access_is_its_protocol_and_nothing_more(template: Template) -> None:
    def on_remotion_bucket(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
        granted = set()
        for statement in statements:
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                if REMOTION_BUCKET in text:
                    key = text.split(f"{REMOTION_BUCKET}/", 1)[1].split('"', 1)[0]
                    granted |= {(action, key) for action in as_list(statement["Action"])}
        return granted

    cancel = {("s3:GetObject", "renders/*/progress.json"), ("s3:PutObject", "renders/*/cancel.json")}
    expected = {
        "Api": cancel,
        "StartRender": cancel | {("s3:PutObject", "input-props/*")},
        "RecordFailure": cancel,
        "Reconcile": cancel,
        "FinalizeRender": {("s3:GetObject", "renders/*")},
    }
    for name, (logical_id, props) in functions_by_name(template).items():
        assert on_remotion_bucket(policy_statements(template, logical_id, props)) == expected.get(name, set()), name


def test_a_partial_remotion_configuration_fails_the_synth(build_stack: Any) -> None:
    with pytest.raises(ValueError, match="remotionFunctionName, remotionServeUrl and remotionBucket go together"):
        build_stack({"remotionBucket": ""})


# --- webhooks --------------------------------------------------------------------------


def queue_pair(template: Template, prefix: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """(queue id, queue, dead-letter id, dead-letter queue) of the bus subscription under `prefix`."""
    queues = {
        k: q["Properties"]
        for k, q in resources(template, "AWS::SQS::Queue").items()
        if k.startswith(prefix) and k[len(prefix) :].startswith(("Queue", "DeadLetters"))
    }
    (queue_id,) = [k for k, q in queues.items() if "RedrivePolicy" in q]
    (dlq_id,) = [k for k in queues if k != queue_id]
    return queue_id, queues[queue_id], dlq_id, queues[dlq_id]


@pytest.mark.parametrize(
    ("prefix", "function", "detail_types", "max_receives"),
    [
        (
            "WebhooksDeliveries",
            "WebhookDeliverer",
            ["Render Started", "Render Succeeded", "Render Failed", "Render Cancelled"],
            None,
        ),
        ("Email", "EmailNotifier", ["Render Succeeded", "Render Failed"], 5),
        ("Deliveries", "OutputDeliverer", ["Render Succeeded"], 6),
    ],
)
def test_each_bus_subscription_is_a_rule_to_a_queue_with_an_alarmed_dead_letter_queue(
    template: Template, prefix: str, function: str, detail_types: list[str], max_receives: int | None
) -> None:
    from infra.constructs.webhooks import MAX_RECEIVE_COUNT
    from render_service.models.events import DetailType

    queue_id, queue, dlq_id, dlq = queue_pair(template, prefix)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": max_receives or MAX_RECEIVE_COUNT,
    }
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 86400
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    assert len(rules) == 1
    (rule,) = rules
    # The webhook rule forwards every detail type the service publishes, including later ones.
    expected = [d.value for d in DetailType] if function == "WebhookDeliverer" else detail_types
    assert set(detail_types) <= set(expected)
    assert rule["EventPattern"] == {"source": ["render-service"], "detail-type": expected}
    bus_id, _ = only(template, "AWS::Events::EventBus")
    assert rule["EventBusName"] == {"Ref": bus_id}
    (target,) = rule["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}

    function_id, props = functions_by_name(template)[function]
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": function_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    assert queue["VisibilityTimeout"] >= props["Timeout"]

    topic_id, _ = only(template, "AWS::SNS::Topic")
    (alarm,) = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]

    statements = policy_statements(template, function_id, props)
    sqs_statements = [s for s in statements if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert sqs_statements
    assert all(as_list(s["Resource"]) == [{"Fn::GetAtt": [queue_id, "Arn"]}] for s in sqs_statements)
    assert "sqs:ChangeMessageVisibility" in actions_on(statements, queue_id)
    if function != "OutputDeliverer":  # it reads the outputs it copies (renders/*, checked below)
        assert not actions_on(statements, "DataBucket"), "reads no media"
        assert not any(a.startswith("s3:") for s in statements for a in as_list(s["Action"]))


def test_the_webhook_secret_is_generated_and_only_the_deliverer_reads_it(template: Template) -> None:
    secrets = {
        logical_id: r["Properties"]
        for logical_id, r in resources(template, "AWS::SecretsManager::Secret").items()
        if "webhook" in r["Properties"].get("Description", "")
    }
    ((secret_id, secret),) = secrets.items()
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    for name, (logical_id, props) in functions_by_name(template).items():
        reads = "secretsmanager:GetSecretValue" in actions_on(policy_statements(template, logical_id, props), secret_id)
        assert reads == (name == "WebhookDeliverer"), name
        has_env = props["Environment"]["Variables"].get("WEBHOOK_SECRET_ARN") == {"Ref": secret_id}
        assert has_env == (name == "WebhookDeliverer"), name


def test_only_the_email_notifier_may_send_and_only_from_the_configured_sender(template: Template) -> None:
    for name, (logical_id, props) in functions_by_name(template).items():
        statements = policy_statements(template, logical_id, props)
        ses = [s for s in statements if any(a.startswith("ses:") for a in as_list(s["Action"]))]
        env = props["Environment"]["Variables"]
        if name != "EmailNotifier":
            assert not ses, name
            assert ("EMAIL_FROM" in env) == (name == "Api"), name
            continue
        (statement,) = ses
        assert as_list(statement["Action"]) == ["ses:SendEmail"]
        resources_text = json.dumps(statement["Resource"])
        assert "identity/renders@example.com" in resources_text
        assert "identity/example.com" in resources_text
        assert env["EMAIL_FROM"] == "renders@example.com"
    _, api = functions_by_name(template)["Api"]
    assert api["Environment"]["Variables"]["EMAIL_NOTIFY_DEFAULT"] == "false"


def test_without_a_sender_nothing_may_send_email(build_stack: Any) -> None:
    template = Template.from_stack(build_stack({"emailFrom": ""}))
    for name, (logical_id, props) in functions_by_name(template).items():
        assert "EMAIL_FROM" not in props["Environment"]["Variables"], name
        assert not actions_on(policy_statements(template, logical_id, props), "ses"), name


def test_destinations_reach_the_api_and_the_deliverer_and_only_the_deliverer_reads_their_keys(
    template: Template,
) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r2-keys-AbCdEf"
    for name, (logical_id, props) in functions_by_name(template).items():
        env = props["Environment"]["Variables"]
        assert ("DELIVERY_DESTINATIONS" in env) == (name in {"Api", "OutputDeliverer"}), name
        reads = "secretsmanager:GetSecretValue" in actions_on(policy_statements(template, logical_id, props), arn)
        assert reads == (name == "OutputDeliverer"), name
    _, deliverer = functions_by_name(template)["OutputDeliverer"]
    destinations = json.loads(deliverer["Environment"]["Variables"]["DELIVERY_DESTINATIONS"])
    assert destinations["r2"]["endpoint"] == "https://0123abcd.r2.cloudflarestorage.com"
    logical_id, props = functions_by_name(template)["OutputDeliverer"]
    assert media_actions_on(policy_statements(template, logical_id, props), "renders/*") >= {"s3:GetObject*"}
    assert not media_actions_on(policy_statements(template, logical_id, props), "inputs/*")


def test_a_bad_destination_fails_the_synth_naming_it(build_stack: Any) -> None:
    with pytest.raises(ValueError, match="deliveryDestinations"):
        build_stack({"deliveryDestinations": {"r2": {"endpoint": "https://x"}}})
