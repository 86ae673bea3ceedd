"""Azure AD sign-in that really stays inside one tenant.

The tenant id only picks the authorize/token endpoints; an app registered as multi-tenant still returns
users of other tenants. Here the id token's `tid` must equal `tenant_id`. Within the tenant everyone may sign
in unless `allowed_users` is set (admins always may). `allow_all` is not used: it would skip this check.
"""

from oauthenticator.azuread import AzureAdOAuthenticator


class JhubAzureAdOAuthenticator(AzureAdOAuthenticator):
    async def check_allowed(self, username, auth_model):
        if auth_model is None:
            return await super().check_allowed(username, auth_model)
        claims = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        if not self.tenant_id or claims.get("tid") != self.tenant_id:
            self.log.warning("azuread: %s is from tenant %r, not %r; refused",
                             username, claims.get("tid"), self.tenant_id)
            return False
        if not self.allowed_users:
            return True
        return await super().check_allowed(username, auth_model)
