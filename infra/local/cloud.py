"""The CDK stack, deployed onto moto in this process.

`LocalCloud` reads the template that `make synth` wrote, creates its table, bucket, bus, functions
and state machine on a moto server, and makes moto's Lambda run our handlers in-process. The state
machine is the synthesized definition with its ARNs resolved, never a hand-written copy.

moto quirks handled here (see shared/design.md):
- moto runs Lambda code only in Docker, so `invoke` is patched to call the handler named in the
  function's configuration, with Lambda's error contract, and async invokes go to a thread pool;
- moto does not serialize DynamoDB writes, so conditional writes could both succeed under
  concurrency: one lock around DynamoDB dispatch makes them atomic, as they are on AWS;
- Wait states really sleep, so the local environment shortens the intervals the tasks return;
- moto evaluates no IAM, so the template's `dynamodb:LeadingKeys` policies are enforced here
  (see `iam.py`): each DynamoDB request carries the name of the function that made it.

The team's Remotion Lambda does not exist here either: a stand-in (`remotion.py`) that speaks its
protocol runs under the configured function name, with its bucket, unless `remotion=False`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from aws_lambda_powertools import Metrics
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from infra.local import fastpaths
from infra.local.iam import LeadingKeyGuard
from infra.local.lifecycle import ExpirationRule, LocalLifecycle
from infra.local.template import ACCOUNT, REGION, Template
from render_service.settings import LEGACY_RATE_VARIABLES

log = logging.getLogger("render_service.local")

STACK_NAME = "RenderService"
DEFAULT_TEMPLATE = Path("cdk.out") / f"{STACK_NAME}.template.json"
EVENTS_QUEUE = "render-events-tap"

# Policy knobs a person may set when starting the local stack (`RATE_LIMIT_RENDERS=2 make serve`);
# they win over the values synthesized into the template.
POLICY_VARIABLES = (
    # The retention classes are the template's (each needs its lifecycle rule); their clock is not.
    "EXPIRY_REMINDER_HOURS",
    "RETENTION_DAY_SECONDS",
    "RATE_LIMITS",
    *LEGACY_RATE_VARIABLES,
    "MAX_ACTIVE_RENDERS",
    "MAX_QUEUED_RENDERS",
    "INITIAL_CREDITS",
    "CREDITS_ENABLED",
    "ALLOW_HIGH_RESOLUTION",
    "ALLOWED_SOURCE_BUCKETS",
    "UPLOAD_RATE_LIMIT",
    "MAX_RENDER_ATTEMPTS",
    "RETRY_DELAYS_SECONDS",
)

RATE_VARIABLES = frozenset({"RATE_LIMITS", *LEGACY_RATE_VARIABLES})

REMOTION_VARIABLES = (
    "REMOTION_FUNCTION_NAME",
    "REMOTION_SERVE_URL",
    "REMOTION_BUCKET",
    "REMOTION_REGION",
    "REMOTION_VERSION",
)
# The stand-in's deployment, named as Remotion names its own (`npx remotion lambda functions deploy`),
# when neither the template nor the environment names one.
LOCAL_REMOTION = {
    "REMOTION_FUNCTION_NAME": "remotion-render-4-0-0-mem2048mb-disk2048mb-120sec",
    "REMOTION_SERVE_URL": "https://remotionlambda-useast1-local.s3.us-east-1.amazonaws.com/sites/app/index.html",
    "REMOTION_BUCKET": "remotionlambda-useast1-local",
}
REMOTION_STANDIN_HANDLER = "infra.local.remotion.handler"

LOCAL_EMAIL_FROM = "renders@example.test"
R2_BUCKET = "r2-exports"
R2_CREDENTIALS = {"accessKeyId": "r2-local-key", "secretAccessKey": "r2-local-secret"}

# Faster than the deployed defaults, so a local render isn't mostly waiting.
LOCAL_ENVIRONMENT = {
    # PollRender shortens the wait as a render nears its end (workflow/steps.py `next_wait`).
    "POLL_INTERVAL_SECONDS": "3",
    "SLOT_WAIT_SECONDS": "1",
    # Whole-render retries wait 30 s, 2 min, 5 min deployed; scaled down here.
    "RETRY_DELAYS_SECONDS": "1,2,3",
    "DELIVERY_RETRY_BASE_SECONDS": "1",
    "CHUNK_STALL_SECONDS": "60",
    "CHUNK_DISPATCH_TIMEOUT_SECONDS": "600",
    # The layer's paths (/opt/...) don't exist here; settings fall back to imageio-ffmpeg and the font packages.
    "FFMPEG_PATH": "",
    "FONT_DIR": "",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # Webhooks: loopback http receivers (tests, a frontend's dev server), and seconds, not minutes, of backoff.
    "WEBHOOK_ALLOW_LOOPBACK": "true",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    "WEBHOOK_RETRY_CAP_SECONDS": "2",
    # Email: moto's SES records what is sent (`LocalCloud.sent_emails`); this sender is verified there.
    "EMAIL_FROM": LOCAL_EMAIL_FROM,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LambdaContext:
    """Enough of Lambda's context object for Powertools."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- moto patches ---------------------------------------------------------------------------

_dynamodb_lock = threading.RLock()
# The function whose handler is running on this thread; tagged onto its DynamoDB requests.
_current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("local_function", default=None)
_FUNCTION_HEADER = "X-Local-Function"
_guard = LeadingKeyGuard({})
_async_pool = ThreadPoolExecutor(
    max_workers=int(os.environ.get("LOCAL_CHUNK_WORKERS", "4")), thread_name_prefix="lambda"
)


def _handler_for(handler_path: str) -> Callable[[dict[str, Any], Any], Any]:
    module, _, attr = handler_path.rpartition(".")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def _run(handler: Callable[[dict[str, Any], Any], Any], event: Any, context: LambdaContext) -> tuple[bytes, bool]:
    """Calls a handler as Lambda would: JSON in, JSON out, an exception as `{errorType, errorMessage}`."""
    token = _current_function.set(context.function_name)
    try:
        result = handler(event, context)
    except Exception as exc:
        log.info("function %s raised %s: %s", context.function_name, type(exc).__name__, exc)
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}
        return json.dumps(error).encode(), True
    finally:
        _current_function.reset(token)
        forget_metrics()
    return json.dumps(result, default=str).encode(), False


def forget_metrics() -> None:
    """Ends an invocation's metrics, as Lambda's flush does. With metrics disabled (locally), Powertools
    keeps them instead, in one set for the whole process, until 100 values of one metric make
    `add_metric` serialize in the middle of a request, and fail there if no namespace was set."""
    Metrics().clear_metrics()


def _invoke(
    self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    fn = self.get_function(function_name, qualifier)
    handler = _handler_for(str(fn.handler))
    event = json.loads(body) if body else {}
    context = LambdaContext(fn.function_name, fn.function_arn, int(fn.memory_size), int(fn.timeout))
    if headers.get("X-Amz-Invocation-Type") == "Event":
        _async_pool.submit(_run, handler, event, context)
        return b""
    payload, errored = _run(handler, event, context)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(payload))
    return payload


def _serialized_dynamodb(original: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
    def call_action(self: DynamoHandler) -> Any:
        denial = _guard.denial(self.headers.get(_FUNCTION_HEADER), self.headers.get("X-Amz-Target", ""), self.body)
        if denial:
            log.warning("denied: %s", denial)
            body = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": denial}
            return 400, {"status": 400, "content-type": "application/x-amz-json-1.0"}, json.dumps(body)
        with _dynamodb_lock:
            return original(self)

    return call_action


def _tag_with_function(request: Any, **_: Any) -> None:
    function = _current_function.get()
    if function:
        request.headers[_FUNCTION_HEADER] = function


@contextmanager
def acting_as(function_name: str) -> Iterator[None]:
    """Runs the block's AWS calls as the given (physical) function, as the bridge does for handlers."""
    token = _current_function.set(function_name)
    try:
        yield
    finally:
        _current_function.reset(token)


def patch_moto() -> None:
    """Idempotent: the first call installs the bridge and the lock."""
    if LambdaBackend.invoke is _invoke:
        return
    fastpaths.install()
    LambdaBackend.invoke = _invoke  # type: ignore[method-assign]
    LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
    DynamoHandler.call_action = _serialized_dynamodb(DynamoHandler.call_action)  # type: ignore[method-assign]
    # Clients made from the default session after this carry the calling function's name.
    boto3._get_default_session().events.register("before-send.dynamodb", _tag_with_function)


def create_table(client: Any, name: str, props: dict[str, Any]) -> None:
    """Creates a table as the template defines it (keys and indexes), on-demand."""
    client.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=[
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in props.get("GlobalSecondaryIndexes", [])
        ],
        BillingMode="PAY_PER_REQUEST",
    )


# --- the local cloud ------------------------------------------------------------------------


CDN_RESOURCES = {
    "AWS::CloudFront::Distribution": ("DomainName",),
    "AWS::CloudFront::PublicKey": (),
}


class LocalCloud:
    def __init__(
        self, template_path: Path = DEFAULT_TEMPLATE, work_dir: Path | None = None, remotion: bool = True
    ) -> None:
        self.template = Template(template_path)
        self.work_dir = work_dir or Path(".local")
        self.remotion = remotion
        self.port = 0
        self.endpoint = ""
        self.environment: dict[str, str] = {}
        self._server: ThreadedMotoServer | None = None
        self._saved_environ: dict[str, str] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._pollers: list[threading.Thread] = []
        self._r2_process: subprocess.Popen[bytes] | None = None
        self.r2_endpoint = ""
        self.queue_urls: dict[str, str] = {}  # logical id -> URL, for the template's SQS queues
        self.status_rules: list[tuple[frozenset[str], list[str]]] = []  # (statuses, target function names)
        self.scheduled_rules: list[tuple[float, list[str]]] = []  # (period in seconds, target function names)

    # The stack's outputs, under the names the template gave them.
    table_name = bucket_name = event_bus_name = state_machine_arn = events_queue_url = ""
    remotion_function_name = remotion_bucket = ""

    def start(self) -> LocalCloud:
        self._saved_environ = dict(os.environ)
        patch_moto()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        # Requests that add no metric (a GET) make Powertools warn on every flush.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                # moto's state-machine interpreter calls Lambda and EventBridge on this port.
                "MOTO_PORT": str(self.port),
            }
        )
        # moto keeps its accounts in this process, not in the server: a second LocalCloud in one
        # process (an e2e module with other settings) would find the first one's resources.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        # Must come before any function is created.
        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
            timeout=10,
        ).raise_for_status()
        self._deploy()
        self._stopping.clear()
        if self.status_rules or self.scheduled_rules or self.lifecycle.rules:
            self._watcher = threading.Thread(target=self._watch_executions, name="sfn-status-events", daemon=True)
            self._watcher.start()
        self._pollers = [
            threading.Thread(target=self._poll_queue, args=mapping, name=f"sqs-{mapping[1]}", daemon=True)
            for mapping in self._event_source_mappings()
        ]
        for poller in self._pollers:
            poller.start()
        from render_service.service import reset

        reset()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher:
            self._watcher.join(timeout=5)
            self._watcher = None
        for poller in self._pollers:
            poller.join(timeout=10)
        self._pollers = []
        if self._server:
            self._server.stop()
            self._server = None
        if self._r2_process is not None:
            self._r2_process.terminate()
            self._r2_process.wait(timeout=10)
            self._r2_process = None
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)  # type: ignore[call-overload]

    def _deploy(self) -> None:
        t = self.template
        role_arn = self.client("iam").create_role(
            RoleName="local-execution-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

        for logical_id, props in t.of_type("AWS::DynamoDB::Table"):
            name = f"{STACK_NAME}-{logical_id}"
            create_table(self.client("dynamodb"), name, props)
            t.refs[logical_id] = name
            t.attrs[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

        for logical_id, _props in t.of_type("AWS::S3::Bucket"):
            name = f"{STACK_NAME}-{logical_id}".lower()[:63]
            self.client("s3").create_bucket(Bucket=name)
            t.refs[logical_id] = name
            t.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

        for logical_id, _props in t.of_type("AWS::Events::EventBus"):
            name = f"{STACK_NAME}-{logical_id}"
            arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
            t.refs[logical_id] = name
            t.attrs[(logical_id, "Arn")] = arn
            t.attrs[(logical_id, "Name")] = name

        # CloudFront does not run here: its settings resolve to "" (unset), so download links fall
        # back to S3 presigning, which the local stack's static credentials keep valid.
        for kind, attributes in CDN_RESOURCES.items():
            for logical_id, _props in t.of_type(kind):
                t.refs[logical_id] = ""
                t.attrs |= {(logical_id, attribute): "" for attribute in attributes}

        self._deploy_secrets()
        self._deploy_queues()

        functions = list(t.of_type("AWS::Lambda::Function"))
        for logical_id, _props in functions:  # names first: environments refer to each other
            name = f"{STACK_NAME}-{logical_id}"[:64]
            t.refs[logical_id] = name
            t.attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

        machines = list(t.of_type("AWS::StepFunctions::StateMachine"))
        for logical_id, _props in machines:
            name = f"{STACK_NAME}-{logical_id}"
            t.refs[logical_id] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
            t.attrs[(logical_id, "Name")] = name

        environment: dict[str, str] = {}
        lam = self.client("lambda")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("README", "code runs in-process; see infra/local/cloud.py")
        for logical_id, props in functions:
            variables = {k: str(v) for k, v in t.resolve(props.get("Environment", {}).get("Variables", {})).items()}
            for key, value in variables.items():
                if environment.get(key, value) != value:
                    raise ValueError(f"functions disagree on {key}; the local stack shares one environment")
            environment |= variables
            lam.create_function(
                FunctionName=t.refs[logical_id],
                Runtime=props.get("Runtime", "python3.12"),
                Role=role_arn,
                Handler=props["Handler"],
                Code={"ZipFile": code.getvalue()},
                Timeout=int(props.get("Timeout", 60)),
                MemorySize=int(props.get("MemorySize", 512)),
                Environment={"Variables": variables},
            )

        for logical_id, props in machines:
            definition = t.resolve(props["DefinitionString"])
            self.client("stepfunctions").create_state_machine(
                name=t.attrs[(logical_id, "Name")], definition=definition, roleArn=role_arn
            )
            self.state_machine_arn = t.refs[logical_id]

        self.work_dir.mkdir(parents=True, exist_ok=True)
        environment |= LOCAL_ENVIRONMENT | {"WORK_DIR": str(self.work_dir.resolve() / "work")}
        overrides = {name: os.environ[name] for name in POLICY_VARIABLES if name in os.environ}
        if overrides.keys() & RATE_VARIABLES:
            # The rate policy is replaced as a whole: the template's RATE_LIMITS next to a person's
            # RATE_LIMIT_RENDERS=2 would be two policies, which the settings refuse.
            environment = {k: v for k, v in environment.items() if k not in RATE_VARIABLES}
        environment |= overrides
        environment = self._deploy_remotion(environment, role_arn, code.getvalue())
        environment = self._deploy_r2(environment)
        self.environment = environment
        os.environ.update(environment)
        _guard.grants = LeadingKeyGuard.from_template(self.template).grants
        self.status_rules = self._execution_status_rules()
        self.scheduled_rules = self._scheduled_rules()
        self.table_name = environment["TABLE_NAME"]
        self.bucket_name = environment["BUCKET_NAME"]
        self.event_bus_name = environment["EVENT_BUS_NAME"]
        self.lifecycle = self._lifecycle()
        self._tap_events()
        self._deploy_bus_rules()
        if environment.get("EMAIL_FROM"):
            self.client("ses").verify_email_identity(EmailAddress=environment["EMAIL_FROM"])

    def _deploy_r2(self, environment: dict[str, str]) -> dict[str, str]:
        """A second moto server, in its own process (so its state is not ours), stands in for Cloudflare
        R2 as the destination `r2`, unless the template or the environment names destinations."""
        configured = os.environ.get("DELIVERY_DESTINATIONS") or environment.get("DELIVERY_DESTINATIONS", "{}")
        if json.loads(configured or "{}"):
            return environment | {"DELIVERY_DESTINATIONS": configured}
        port = free_port()
        self._r2_process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.r2_endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.r2_endpoint}/moto-api/", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or self._r2_process.poll() is not None:
                    raise RuntimeError("the R2 stand-in (moto server) did not start") from None
                time.sleep(0.1)
        self.r2_client().create_bucket(Bucket=R2_BUCKET)
        secret = self.client("secretsmanager").create_secret(
            Name="local-r2-credentials", SecretString=json.dumps(R2_CREDENTIALS)
        )["ARN"]
        destinations = {
            "r2": {
                "endpoint": self.r2_endpoint,
                "bucket": R2_BUCKET,
                "prefix": "exports/",
                "credentialsSecretArn": secret,
                "region": REGION,
            }
        }
        return environment | {"DELIVERY_DESTINATIONS": json.dumps(destinations)}

    def r2_client(self) -> Any:
        """A client of the R2 stand-in, with the destination's own keys."""
        return boto3.client(
            "s3",
            endpoint_url=self.r2_endpoint,
            region_name=REGION,
            aws_access_key_id=R2_CREDENTIALS["accessKeyId"],
            aws_secret_access_key=R2_CREDENTIALS["secretAccessKey"],
        )

    def _deploy_remotion(self, environment: dict[str, str], role_arn: str, code: bytes) -> dict[str, str]:
        """The Remotion stand-in under the configured name (the template's, else the environment's,
        else LOCAL_REMOTION's), with its bucket; with `remotion=False`, no Remotion at all."""
        if not self.remotion:
            for name in REMOTION_VARIABLES:
                os.environ.pop(name, None)
            return {k: v for k, v in environment.items() if k not in REMOTION_VARIABLES}
        from infra.local.remotion import VERSION

        given = {name: os.environ[name] for name in REMOTION_VARIABLES if os.environ.get(name)}
        configured = {name: environment[name] for name in REMOTION_VARIABLES if environment.get(name)}
        # Everything runs in the one local region, and the stand-in is the version it is.
        remotion = LOCAL_REMOTION | configured | given | {"REMOTION_REGION": REGION, "REMOTION_VERSION": VERSION}
        self.remotion_function_name = remotion["REMOTION_FUNCTION_NAME"]
        self.remotion_bucket = remotion["REMOTION_BUCKET"]
        self.client("s3").create_bucket(Bucket=self.remotion_bucket)
        self.client("lambda").create_function(
            FunctionName=self.remotion_function_name,
            Runtime="nodejs22.x",  # what Remotion deploys; the stand-in runs in-process
            Role=role_arn,
            Handler=REMOTION_STANDIN_HANDLER,
            Code={"ZipFile": code},
            Timeout=900,
            MemorySize=2048,
            Environment={"Variables": {"REMOTION_BUCKET": self.remotion_bucket}},
        )
        return environment | remotion

    @property
    def day_seconds(self) -> int:
        """The retention day of the functions' settings: shortened, it speeds up schedules and expiry alike."""
        return int(self.environment.get("RETENTION_DAY_SECONDS") or 86400)

    def _lifecycle(self) -> LocalLifecycle:
        """moto stores lifecycle rules but never runs them: the watcher applies the service bucket's."""
        rules: list[ExpirationRule] = []
        for logical_id, props in self.template.of_type("AWS::S3::Bucket"):
            if self.template.refs.get(logical_id) == self.bucket_name:
                rules = ExpirationRule.from_template(
                    props.get("LifecycleConfiguration", {}).get("Rules", []), output_day_seconds=self.day_seconds
                )
        return LocalLifecycle(self.client("s3"), self.bucket_name, rules)

    def _execution_status_rules(self) -> list[tuple[frozenset[str], list[str]]]:
        """The template's rules on Step Functions status events, as (statuses, target functions)."""
        rules = []
        for _, props in self.template.of_type("AWS::Events::Rule"):
            pattern = props.get("EventPattern") or {}
            if pattern.get("source") != ["aws.states"]:
                continue
            statuses = frozenset(pattern.get("detail", {}).get("status", []))
            targets = [self.template.resolve(target["Arn"]).rsplit(":", 1)[-1] for target in props.get("Targets", [])]
            rules.append((statuses, targets))
        return rules

    def _scheduled_rules(self) -> list[tuple[float, list[str]]]:
        """The template's `rate(...)` rules, as (period in seconds, target functions)."""
        units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
        rules = []
        for _, props in self.template.of_type("AWS::Events::Rule"):
            expression = props.get("ScheduleExpression", "")
            if not expression.startswith("rate("):
                continue
            amount, unit = expression[5:-1].split()
            targets = [self.template.resolve(target["Arn"]).rsplit(":", 1)[-1] for target in props.get("Targets", [])]
            # On the settings' clock: a shortened retention day shortens the hourly reminder run too.
            period = float(amount) * units[unit.rstrip("s")] * self.day_seconds / 86400
            rules.append((max(1.0, period), targets))
        return rules

    def _watch_executions(self) -> None:
        """Stands in for EventBridge where moto falls short: it emits no "Step Functions Execution
        Status Change" events, delivers no events to Lambda targets and runs no schedules."""
        sfn, lam = self.client("stepfunctions"), self.client("lambda")
        announced: set[str] = set()
        watched = sorted(set().union(*(statuses for statuses, _ in self.status_rules)))
        due = [time.monotonic() + period for period, _ in self.scheduled_rules]
        # A look at the bucket every "minute" of the retention day (every second when it is short).
        lifecycle_period, lifecycle_due = max(1.0, self.day_seconds / 1440), time.monotonic()
        while not self._stopping.wait(1.0):
            if time.monotonic() >= lifecycle_due:
                lifecycle_due += lifecycle_period
                with contextlib.suppress(BotoCoreError, ClientError):
                    self.lifecycle.expire(datetime.now(UTC))
            for i, (period, targets) in enumerate(self.scheduled_rules):
                if time.monotonic() >= due[i]:
                    due[i] += period
                    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
                    for target in targets:
                        lam.invoke(FunctionName=target, InvocationType="Event", Payload=json.dumps(scheduled).encode())
            try:
                executions = [
                    e
                    for status in watched
                    for page in sfn.get_paginator("list_executions").paginate(
                        stateMachineArn=self.state_machine_arn, statusFilter=status
                    )
                    for e in page["executions"]
                    if e["executionArn"] not in announced
                ]
            except (BotoCoreError, ClientError):
                if self._stopping.is_set():
                    return  # the server is going away
                continue
            for execution in executions:
                announced.add(execution["executionArn"])
                event = {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Step Functions Execution Status Change",
                    "source": "aws.states",
                    "account": ACCOUNT,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "region": REGION,
                    "resources": [execution["executionArn"]],
                    "detail": {
                        "executionArn": execution["executionArn"],
                        "stateMachineArn": self.state_machine_arn,
                        "name": execution["name"],
                        "status": execution["status"],
                    },
                }
                for statuses, targets in self.status_rules:
                    if execution["status"] in statuses:
                        for target in targets:
                            lam.invoke(FunctionName=target, InvocationType="Event", Payload=json.dumps(event).encode())

    def _deploy_secrets(self) -> None:
        """Secrets that Secrets Manager generates (the webhook signing key) exist here too; the
        CloudFront signing key, written by a custom resource that does not run here, resolves to ""."""
        t = self.template
        secrets = self.client("secretsmanager")
        written_by_custom_resources = {
            str(value["Ref"])
            for resource in t.resources.values()
            if resource["Type"].startswith("Custom::")
            for value in resource.get("Properties", {}).values()
            if isinstance(value, dict) and "Ref" in value
        }
        for logical_id, _props in t.of_type("AWS::SecretsManager::Secret"):
            if logical_id in written_by_custom_resources:
                t.refs[logical_id] = ""
                continue
            value = secrets.get_random_password(PasswordLength=48, ExcludePunctuation=True)["RandomPassword"]
            arn = secrets.create_secret(Name=f"{STACK_NAME}-{logical_id}", SecretString=value)["ARN"]
            t.refs[logical_id] = arn

    def _deploy_queues(self) -> None:
        """The template's queues, dead-letter queues first (the others' redrive policies name them)."""
        t = self.template
        sqs = self.client("sqs")
        queues = sorted(t.of_type("AWS::SQS::Queue"), key=lambda item: "RedrivePolicy" in item[1])
        for logical_id, props in queues:
            name = f"{STACK_NAME}-{logical_id}"[:80]
            attributes: dict[str, str] = {
                key: str(props[key]) for key in ("VisibilityTimeout", "MessageRetentionPeriod") if key in props
            }
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(t.resolve(props["RedrivePolicy"]))
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            t.refs[logical_id] = url
            t.attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            t.attrs[(logical_id, "QueueName")] = name
            self.queue_urls[logical_id] = url

    def _deploy_bus_rules(self) -> None:
        """The template's rules on the service's own bus with SQS targets: moto's EventBridge delivers those."""
        t = self.template
        events = self.client("events")
        for logical_id, props in t.of_type("AWS::Events::Rule"):
            if "EventBusName" not in props or "EventPattern" not in props:
                continue
            bus = t.resolve(props["EventBusName"])
            queue_targets = [
                {"Id": target["Id"], "Arn": t.resolve(target["Arn"])}
                for target in props.get("Targets", [])
                if str(t.resolve(target["Arn"])).startswith("arn:aws:sqs:")
            ]
            if not queue_targets:
                continue
            name = f"{STACK_NAME}-{logical_id}"[:64]
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(t.resolve(props["EventPattern"])))
            events.put_targets(Rule=name, EventBusName=bus, Targets=queue_targets)  # type: ignore[arg-type]

    def _event_source_mappings(self) -> list[tuple[str, str, int]]:
        """The template's SQS event source mappings, as (queue URL, function name, batch size)."""
        t = self.template
        mappings = []
        for _, props in t.of_type("AWS::Lambda::EventSourceMapping"):
            arn = str(t.resolve(props["EventSourceArn"]))
            name = arn.rsplit(":", 1)[-1]
            url = next(u for u in self.queue_urls.values() if u.rsplit("/", 1)[-1] == name)
            mappings.append((url, str(t.resolve(props["FunctionName"])), int(props.get("BatchSize", 10))))
        return mappings

    def _poll_queue(self, queue_url: str, function_name: str, batch_size: int) -> None:
        """Stands in for Lambda's SQS poller: a batch to the function, then the deletes its answer allows
        (ReportBatchItemFailures). Visibility, receive counts and the redrive to the DLQ are moto's SQS."""
        sqs = self.client("sqs")
        lam = boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=BotoConfig(read_timeout=300, retries={"max_attempts": 1}),
        )
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
                if not messages:
                    continue
                records = [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": m.get("MD5OfBody", ""),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": REGION,
                    }
                    for m in messages
                ]
                reply = lam.invoke(FunctionName=function_name, Payload=json.dumps({"Records": records}).encode())
                if reply.get("FunctionError"):
                    continue  # the whole batch comes back after its visibility timeout
                answer = json.loads(reply["Payload"].read() or b"{}") or {}
                failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                for record in records:
                    if record["messageId"] not in failed:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
            except (BotoCoreError, ClientError):
                if self._stopping.is_set():
                    return
                time.sleep(0.5)

    def queue_messages(self, logical_prefix: str) -> list[dict[str, Any]]:
        """The bodies waiting in the template's queue whose logical id starts with `logical_prefix`
        (tests read the dead-letter queue with it); they are left in place (visible again at once)."""
        url = next(u for logical_id, u in self.queue_urls.items() if logical_id.startswith(logical_prefix))
        sqs = self.client("sqs")
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in batch]

    def sent_emails(self) -> list[dict[str, Any]]:
        """Every email moto's SES has accepted, oldest first: {id, source, to, subject, body}."""
        from moto.ses.models import ses_backends

        return [
            {
                "id": m.id,
                "source": m.source,
                "to": list(m.destinations.get("ToAddresses", [])),
                "subject": m.subject,
                "body": m.body,
            }
            for m in ses_backends[ACCOUNT][REGION].sent_messages
        ]

    def _tap_events(self) -> None:
        """Every event on the bus also lands in a queue, so the demo and tests can see what was announced."""
        sqs = self.client("sqs")
        self.events_queue_url = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.events_queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = self.client("events")
        events.put_rule(
            Name="tap-render-events",
            EventBusName=self.event_bus_name,
            EventPattern=json.dumps({"source": ["render-service"]}),
        )
        events.put_targets(
            Rule="tap-render-events", EventBusName=self.event_bus_name, Targets=[{"Id": "tap", "Arn": queue_arn}]
        )

    def execution_arn(self, render_id: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{render_id}"

    def ended_execution(self, render_id: str, timeout: float = 30) -> dict[str, Any]:
        """The render's execution once it has left RUNNING.

        The render record turns terminal in a task before the execution's last states run, and
        moto ends a stopped execution a moment after StopExecution returns, so a caller that
        checks the execution right after the record may still see RUNNING.
        """
        sfn, deadline = self.client("stepfunctions"), time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=self.execution_arn(render_id)))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {render_id} still RUNNING after {timeout} s")
            time.sleep(0.1)
        return dict(described)

    def received_events(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Drains the events tap: every event announced since the last call."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0 if found else wait_seconds
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def local_cloud(template_path: Path = DEFAULT_TEMPLATE) -> Iterator[LocalCloud]:
    cloud = LocalCloud(template_path).start()
    try:
        yield cloud
    finally:
        cloud.stop()
