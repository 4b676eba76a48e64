"""Sign-in: a Cognito user pool with managed login, and an identity pool whose signed-in users may invoke
this runtime (over HTTP and over its WebSocket contract) and nothing else. No self sign-up, no
unauthenticated identities."""

from collections.abc import Callable, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_cognito_identitypool as identitypool
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk.nag import acknowledge

LOCAL_WEB_CLIENT_URL = "http://localhost:7860"
PAGE_ACTIONS = (
    "bedrock-agentcore:InvokeAgentRuntime",
    "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream",
)
"""What the web client calls: signaling over HTTP, and the WebSocket contract when WebRTC cannot connect."""


class SignIn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_prefix: str,
        callback_urls: Sequence[str],
        grant_invoke: Callable[[iam.IGrantable, Sequence[str]], iam.Grant],
        self_sign_up: bool = False,
    ) -> None:
        """`grant_invoke(principal, actions)` grants a principal those actions on the runtime only (the
        runtime's invoke grant); the signed-in users get PAGE_ACTIONS."""
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=self_sign_up,
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
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.domain = self.user_pool.add_domain(
            "ManagedLogin",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        self.client = self.user_pool.add_client(
            "WebClient",
            generate_secret=False,  # a public client: the browser cannot keep a secret
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=list(callback_urls),
                logout_urls=list(callback_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1),
        )
        # The newer managed login shows an error page until the client has a branding style.
        cognito.CfnManagedLoginBranding(
            self,
            "ManagedLoginBranding",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            use_cognito_provided_values=True,
        )
        self.identity_pool = identitypool.IdentityPool(
            self,
            "IdentityPool",
            allow_unauthenticated_identities=False,
            authentication_providers=identitypool.IdentityPoolAuthenticationProviders(
                user_pools=[
                    identitypool.UserPoolAuthenticationProvider(
                        user_pool=self.user_pool, user_pool_client=self.client
                    )
                ]
            ),
        )
        # The page calls over the WebSocket contract when WebRTC cannot connect. That is its own action, and
        # aws-cdk-lib's grantInvoke has been reported (aws/aws-cdk#37495) to leave it out.
        grant_invoke(self.identity_pool.authenticated_role, PAGE_ACTIONS)
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional by design: users may enrol a TOTP authenticator; accounts "
            "are created only by an administrator (no self sign-up) and need a 12+ character password.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Essentials feature plan is enough for an administrator-provisioned user list; the Plus "
            "plan's threat protection is charged per active user and can be switched on per stage later.",
        )

    @property
    def managed_login_url(self) -> str:
        """https://<prefix>.auth.<region>.amazoncognito.com"""
        return self.domain.base_url()

    def create_user_command(self, region: str) -> str:
        return (
            f"aws cognito-idp admin-create-user --region {region} "
            f"--user-pool-id {self.user_pool.user_pool_id} --username YOUR_EMAIL "
            "--user-attributes Name=email,Value=YOUR_EMAIL Name=email_verified,Value=true"
        )
