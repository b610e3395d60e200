"""Download links that last: CloudFront in front of the bucket's `renders/`, with signed URLs.

S3 URLs presigned by a Lambda role die with its session (hours). CloudFront signed URLs are
checked against a public key in a key group and live until their own expiry. The key pair is
generated in the account by a custom resource (no Docker, no key in the template or the repo):
its private half goes straight into Secrets Manager, its public half into the key group.
"""

from __future__ import annotations

from aws_cdk import Annotations, CustomResource, Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs import acknowledge, cfn

# Must match render_service.cdn: the distribution serves renders/ only, at its root.
ORIGIN_PATH = "/renders"
DISPOSITION_PARAMETER = "response-content-disposition"


class RenderDelivery(Construct):
    """`distribution` serves renders/ to signed URLs only; `secret` holds the signing key."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, key_generator: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "SigningKey",
            description="Private key (PEM) that signs CloudFront download URLs; written by the SigningKeyPair resource",
        )
        acknowledge(
            cfn(self.secret),
            "AwsSolutions-SMG4",
            "A CloudFront signing key is rotated by adding a second public key to the key group, "
            "switching the secret, then removing the old key, not by a Secrets Manager rotation Lambda.",
        )
        self.secret.grant_read(key_generator)
        self.secret.grant_write(key_generator)
        key_pair = CustomResource(
            self,
            "SigningKeyPair",
            service_token=key_generator.function_arn,
            resource_type="Custom::CloudFrontSigningKey",
            properties={"SecretArn": self.secret.secret_arn},
        )
        self.public_key = cloudfront.PublicKey(
            self,
            "SigningPublicKey",
            encoded_key=key_pair.get_att_string("PublicKey"),
            comment="Verifies render download URLs",
        )
        key_group = cloudfront.KeyGroup(self, "SigningKeyGroup", items=[self.public_key])

        cache_policy = cloudfront.CachePolicy(
            self,
            "RendersCache",
            comment="Finished renders are immutable; the download filename is part of the key",
            default_ttl=Duration.days(1),
            max_ttl=Duration.days(7),
            min_ttl=Duration.seconds(0),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list(DISPOSITION_PARAMETER),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
        )
        # OAC, but not CDK's bucket-wide s3:GetObject: seen through this read-only reference the
        # bucket takes no policy from the origin, and the statement below grants renders/ only.
        origin_bucket = s3.Bucket.from_bucket_attributes(
            self,
            "OriginBucket",
            bucket_arn=bucket.bucket_arn,
            bucket_regional_domain_name=bucket.bucket_regional_domain_name,
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(origin_bucket, origin_path=ORIGIN_PATH)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Render downloads (signed URLs only)",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                cache_policy=cache_policy,
                trusted_key_groups=[key_group],
                compress=False,  # MP4 does not compress
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
        )
        stack = Stack.of(self)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsRenders",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("renders/*")],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": stack.format_arn(
                            service="cloudfront",
                            region="",
                            resource="distribution",
                            resource_name=self.distribution.distribution_id,
                        )
                    }
                },
            )
        )
        Annotations.of(self.distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "The bucket policy is written by RenderDelivery itself, scoped to renders/*.",
        )
        distribution = cfn(self.distribution)
        for rule, reason in {
            "AwsSolutions-CFR1": "Downloads are signed per user and render; geography is not a boundary for them.",
            "AwsSolutions-CFR2": "WAF web ACLs are account-specific and billed; every request needs a valid signature.",
            "AwsSolutions-CFR3": "Standard logging needs an ACL-enabled bucket; the service's buckets enforce "
            "bucket-owner ownership. Enable real-time or v2 logging per deployment if needed.",
            "AwsSolutions-CFR4": "The default *.cloudfront.net certificate fixes the viewer TLS policy; attach a "
            "custom domain and certificate to raise the minimum to TLSv1.2_2021.",
        }.items():
            acknowledge(distribution, rule, reason)

    @property
    def domain_name(self) -> str:
        return self.distribution.distribution_domain_name
