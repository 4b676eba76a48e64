"""Web hosting: the browser client's built files in a private S3 bucket behind CloudFront (origin access
control, HTTPS only, security headers), plus a generated config.json."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct, Node

from cdk.csp import content_security_policy
from cdk.nag import acknowledge, acknowledge_bucket_deployment_handler
from cdk.retention import retention_days

CONFIG_FILE = "config.json"
# Where `make web` builds the client (relative to the repository, where the CDK CLI runs the app); context
# `webClientDir` overrides it.
DEFAULT_WEB_CLIENT_DIR = "web_client/dist"
NONCURRENT_VERSION_DAYS = 30


class WebClientDirError(ValueError):
    """The built web client (context `webClientDir`) is missing."""


def check_web_client_dir(directory: Path) -> Path:
    if not (directory / "index.html").is_file():
        raise WebClientDirError(
            f"The web client build is missing: webClientDir={directory} has no index.html; "
            "run `make web` to build it (or pass -c webClientDir=DIR)."
        )
    return directory


def web_client_dir_from_context(node: Node) -> Path:
    """The built client for an app: context `webClientDir`, else web_client/dist; it must exist."""
    directory = node.try_get_context("webClientDir") or DEFAULT_WEB_CLIENT_DIR
    return check_web_client_dir(Path(directory).resolve())


class WebHosting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        region: str,
        web_client_dir: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        check_web_client_dir(web_client_dir)

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
            # A bad deploy can be rolled back file by file; old versions go after a month.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="HSTS, strict CSP and friends for the voice agent web client",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(region), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Voice agent web client",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=self.headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.deployment_logs = logs.LogGroup(
            self,
            "DeploymentLogs",
            retention=retention_days(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            destination_bucket=self.bucket,
            sources=[s3deploy.Source.asset(str(web_client_dir))],
            distribution=self.distribution,
            distribution_paths=["/*"],
            log_group=self.deployment_logs,
            memory_limit=512,
        )
        self._acknowledge_findings()
        acknowledge_bucket_deployment_handler(self.deployment, self.bucket)

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds only the public, static web client and is readable only by this CloudFront "
            "distribution through origin access control; user activity is recorded where it matters, in "
            "Cognito and AgentCore invocation logs.",
        )
        for rule, reason in (
            (
                "AwsSolutions-CFR1",
                "Any signed-in user may use the agent wherever they are; access is controlled by Cognito "
                "sign-in, not by geography.",
            ),
            (
                "AwsSolutions-CFR2",
                "Serves static files only; the API (AgentCore) is not behind CloudFront and requires SigV4 "
                "credentials from the identity pool. A CloudFront WAF must live in us-east-1, which would "
                "add a cross-region stack for every other region.",
            ),
            (
                "AwsSolutions-CFR3",
                "Static, public web client files only; access logging would add a log bucket with ACLs "
                "that must be emptied on destroy for no security benefit. Sign-ins and calls are logged by "
                "Cognito and AgentCore.",
            ),
            (
                "AwsSolutions-CFR4",
                "The distribution uses the default *.cloudfront.net certificate, for which CloudFront does "
                "not allow a minimum protocol version; browsers negotiate TLS 1.2+ and HSTS is sent. A "
                "custom domain with its own certificate would allow TLSv1.2_2021.",
            ),
        ):
            acknowledge(self.distribution, rule, reason)

    @property
    def url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"

    def add_client_config(self, config: Mapping[str, Any]) -> None:
        """Publish config.json (tokens are resolved at deploy time) next to the built files."""
        self.deployment.add_source(s3deploy.Source.json_data(CONFIG_FILE, dict(config)))
