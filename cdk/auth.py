"""Sign-in: a Cognito user pool with managed login, and an identity pool whose signed-in users may invoke
this runtime (over HTTP and over its WebSocket contract) and nothing else. No self sign-up, no
unauthenticated identities."""

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_cognito_identitypool as identitypool
from constructs import Construct

from cdk.runtime import VoiceAgentRuntime

LOCAL_WEB_CLIENT_URL = "http://localhost:7860"


class SignIn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        callback_urls: Sequence[str],
        runtime: VoiceAgentRuntime,
        self_sign_up: bool = False,
    ) -> None:
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
        # Prefixes are global per region; the account id keeps stages of different accounts apart.
        self.domain = self.user_pool.add_domain(
            "ManagedLogin",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"voice-agent-{stage_name}-{Aws.ACCOUNT_ID}"
            ),
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
        runtime.grant_invoke(
            self.identity_pool.authenticated_role,
            actions=(
                "bedrock-agentcore:InvokeAgentRuntime",
                "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream",
            ),
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
