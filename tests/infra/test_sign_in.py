"""How a user gets a token: SRP from an app, and the admin flow the README's command uses."""

from __future__ import annotations

from aws_cdk.assertions import Template


def test_the_app_client_allows_srp_and_admin_password_auth_but_never_plain_passwords(template: Template) -> None:
    clients = template.find_resources("AWS::Cognito::UserPoolClient")
    assert len(clients) == 1
    flows = set(next(iter(clients.values()))["Properties"]["ExplicitAuthFlows"])
    assert {"ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= flows
    # A password sent by a client without IAM credentials: not offered.
    assert "ALLOW_USER_PASSWORD_AUTH" not in flows
