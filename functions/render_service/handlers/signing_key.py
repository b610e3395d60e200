"""CloudFormation custom resource: the CloudFront signing key pair, made in the account, never in a template.

Create and Update return the public key (`PublicKey`, PEM) for the distribution's key group; the
private key lives only in the Secrets Manager secret (`SecretArn`). A secret that already holds a
key keeps it, so a retried Create or any Update returns the same pair. Delete does nothing: the
secret is the stack's own resource and goes with it.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = Logger()
KEY_BITS = 2048  # what CloudFront accepts for signed URLs


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    status, data, reason = "SUCCESS", {}, ""
    secret_arn = str(event.get("ResourceProperties", {}).get("SecretArn", ""))
    try:
        if event["RequestType"] in ("Create", "Update"):
            data = {"PublicKey": public_key_pem(secret_arn)}
    except Exception as exc:  # CloudFormation waits an hour for a reply that never comes
        logger.exception("signing key request failed")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:500]
    respond(event, context, status, data, reason, physical_id=secret_arn or context.log_stream_name)


def public_key_pem(secret_arn: str, client: Any = None) -> str:
    """The public half of the key in the secret, generating and storing a key if it holds none."""
    secrets = client or boto3.client("secretsmanager")
    current = secrets.get_secret_value(SecretId=secret_arn).get("SecretString", "")
    try:
        key = serialization.load_pem_private_key(current.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        secrets.put_secret_value(SecretId=secret_arn, SecretString=pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public.decode()


def respond(
    event: dict[str, Any], context: Any, status: str, data: dict[str, str], reason: str, *, physical_id: str
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see log stream {context.log_stream_name}",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    # A presigned S3 URL from CloudFormation itself, not from a user.
    request = urllib.request.Request(str(event["ResponseURL"]), data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        reply.read()
