"""The public REST API (Lambda proxy) and the Cognito user pool that guards it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs import acknowledge, cfn, nag_text
from render_service import errors
from render_service.models.api import ADMIN_GROUP

# (path, method). The Powertools resolver in the API function owns the behaviour behind each.
PROTECTED_ROUTES: tuple[tuple[str, str], ...] = (
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
    # Operators: the API function refuses anyone outside the admins group with a 403.
    ("/admin/renders", "GET"),
    ("/admin/renders/{renderId}", "GET"),
    ("/admin/renders/{renderId}/cancel", "POST"),
    ("/admin/users/{userId}/renders", "GET"),
)
PUBLIC_ROUTES: tuple[tuple[str, str], ...] = (
    ("/health", "GET"),
    ("/openapi.json", "GET"),
    ("/docs", "GET"),
)
EXTRA_CORS_HEADERS = ["Idempotency-Key"]


@dataclass(frozen=True)
class GatewayError:
    response_type: apigw.ResponseType
    code: str
    # A fixed message, or None for API Gateway's own ($context.error.messageString is a quoted JSON string).
    message: str | None = None
    status: str | None = None  # None keeps API Gateway's status for the type
    headers: dict[str, str] = field(default_factory=dict)  # values are quoted literals, as API Gateway wants

    @property
    def template(self) -> str:
        message = json.dumps(self.message) if self.message is not None else "$context.error.messageString"
        return f'{{"error": {{"code": "{self.code}", "message": {message}, "details": null}}}}'


GATEWAY_ERRORS: dict[str, GatewayError] = {
    # The Cognito authorizer refused the token (missing, expired, another pool's).
    "Unauthorized": GatewayError(
        apigw.ResponseType.UNAUTHORIZED, errors.Unauthorized.code, "Authorization: missing or invalid"
    ),
    # API Gateway's 403 for a path or method it has no route for: a 404 as the API itself answers.
    "NoRoute": GatewayError(
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, errors.RenderNotFound.code, "no such route", status="404"
    ),
    # Stage throttling, on any route: the 429 the document promises, with its Retry-After.
    "Throttled": GatewayError(
        apigw.ResponseType.THROTTLED,
        errors.RateLimited.code,
        "too many requests to the API; retry shortly",
        headers={"Retry-After": "'1'"},
    ),
    "TooLarge": GatewayError(apigw.ResponseType.REQUEST_TOO_LARGE, errors.PayloadTooLarge.code, "body: too large"),
    # Anything else API Gateway answers itself keeps its status; its type is the code.
    "Default4xx": GatewayError(apigw.ResponseType.DEFAULT_4_XX, "$context.error.responseType"),
    "Default5xx": GatewayError(apigw.ResponseType.DEFAULT_5_XX, "$context.error.responseType"),
}


class RenderApi(Construct):
    """`rest_api` with a Cognito authorizer on every route but health and docs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        cors_allowed_origins: Sequence[str],
        throttling_rate_limit: int,
        throttling_burst_limit: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,  # the app's backend or an admin creates users
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        acknowledge(
            cfn(self.user_pool),
            "AwsSolutions-COG2",
            "MFA (TOTP) is offered but optional: the app team's frontend decides whether to enforce it.",
        )
        acknowledge(
            cfn(self.user_pool),
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) is billed per MAU; opt in per deployment. "
            "Self sign-up is off and the password policy is strong.",
        )
        # Members reach the /admin routes: the ID token carries `cognito:groups`, which the API
        # function checks (API Gateway's authorizer only checks that the token is valid).
        self.admins_group = self.user_pool.add_group(
            "AdminsGroup",
            group_name=ADMIN_GROUP,
            description="Operators: list, inspect and cancel every user's renders (/admin routes)",
        )
        self.user_pool_client = self.user_pool.add_client(
            "WebClient",
            # SRP for apps; admin password auth (IAM-signed, never from a browser) so an operator can
            # get a user's ID token with `aws cognito-idp admin-initiate-auth` (README, Deployment).
            auth_flows=cognito.AuthFlow(user_srp=True, admin_user_password=True),
            generate_secret=False,  # a browser app cannot keep a secret
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[self.user_pool])

        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RenderApi",
            description="Render service API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access logging needs the account-level CloudWatch role; this creates it if missing.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request logs would hold users' tokens and timelines
                throttling_rate_limit=throttling_rate_limit,
                throttling_burst_limit=throttling_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(cors_allowed_origins),
                allow_methods=apigw.Cors.ALL_METHODS,
                allow_headers=[*apigw.Cors.DEFAULT_HEADERS, *EXTRA_CORS_HEADERS],
                max_age=Duration.hours(1),
            ),
        )
        # The stack pins its own `ApiUrl` output; drop RestApi's hashed duplicate.
        self.rest_api.node.try_remove_child("Endpoint")
        push_to_logs = iam.ManagedPolicy.from_aws_managed_policy_name(
            "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        )
        acknowledge(
            cfn(self.rest_api.node.find_child("CloudWatchRole")),
            f"AwsSolutions-IAM4[Policy::{nag_text(self, push_to_logs.managed_policy_arn)}]",
            "API Gateway's account-wide logging role; AWS maintains this managed policy for exactly that purpose.",
        )
        # Errors from API Gateway itself (401 from the authorizer, throttling, unknown routes) come in
        # the API's one error shape, as /openapi.json documents them, and carry CORS too, or the
        # browser hides them from the frontend.
        allow_origin = "*" if "*" in cors_allowed_origins else cors_allowed_origins[0]
        for name, spec in GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                name,
                type=spec.response_type,
                status_code=spec.status,
                response_headers={"Access-Control-Allow-Origin": f"'{allow_origin}'", **spec.headers},
                templates={"application/json": spec.template},
            )

        # One resource-policy statement for the whole API instead of one per method.
        integration = apigw.LambdaIntegration(handler, proxy=True, scope_permission_to_method=False)
        for path, method in PROTECTED_ROUTES:
            self.rest_api.root.resource_for_path(path).add_method(
                method,
                integration,
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.COGNITO,
            )
        for path, method in PUBLIC_ROUTES:
            public = self.rest_api.root.resource_for_path(path).add_method(method, integration)
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    cfn(public),
                    rule,
                    f"{method} {path} is public on purpose (health check or API documentation) "
                    "and returns no user data.",
                )
        stage = self.rest_api.deployment_stage
        acknowledge(
            cfn(self.rest_api),
            "AwsSolutions-APIG2",
            "Bodies and parameters are validated by the API function's Powertools resolver "
            "(pydantic models, the same ones that produce /openapi.json).",
        )
        acknowledge(
            cfn(stage),
            "AwsSolutions-APIG3",
            "WAF web ACLs are account-specific and billed; associate yours with the stage ARN. "
            "Stage throttling and per-user rate limits bound abuse meanwhile.",
        )

    @property
    def url(self) -> str:
        return self.rest_api.url


def _access_log_format() -> apigw.AccessLogFormat:
    field = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": field.context_request_id(),
                "extendedRequestId": field.context_extended_request_id(),
                "xrayTraceId": field.context_xray_trace_id(),
                "requestTime": field.context_request_time(),
                "httpMethod": field.context_http_method(),
                "resourcePath": field.context_resource_path(),
                "status": field.context_status(),
                "responseLength": field.context_response_length(),
                "responseLatency": field.context_response_latency(),
                "integrationLatency": field.context_integration_latency(),
                "integrationStatus": field.context_integration_status(),
                "errorMessage": field.context_error_message(),
                "authorizerError": field.context_authorizer_error(),
                "user": field.context_authorizer_claims("sub"),
                "sourceIp": field.context_identity_source_ip(),
                "userAgent": field.context_identity_user_agent(),
            }
        )
    )
