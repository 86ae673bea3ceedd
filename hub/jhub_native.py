"""NativeAuthenticator where nobody can claim an admin name by signing up first.

* Admin accounts are created at hub start with passwords from an environment variable (JSON object
  {"admin": "initial password"}, filled from a Kubernetes Secret), so admins can sign in at once. An existing
  account is never touched again (the admin may change the password).
* Signing up with an admin name is refused, always: an admin without a seeded password is reserved.
* Only approved accounts may sign in (`check_allowed` asks NativeAuthenticator's approval flag), so the hub
  needs no `allow_all`.
"""

import json
import os

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode


class JhubNativeAuthenticator(NativeAuthenticator):
    admin_passwords_env = Unicode(
        "JHUB_NATIVE_ADMIN_PASSWORDS", config=True, help="Env var with a JSON object of initial admin passwords."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed_admins()

    def _initial_passwords(self) -> dict:
        raw = os.environ.get(self.admin_passwords_env, "")
        if not raw:
            return {}
        try:
            passwords = json.loads(raw)
        except ValueError:
            passwords = None
        if not isinstance(passwords, dict):
            raise ValueError(f"{self.admin_passwords_env} must hold a JSON object of username: password")
        return {self.normalize_username(k): v for k, v in passwords.items() if isinstance(v, str) and v}

    def _admin_names(self) -> set:
        """Admin names as JupyterHub stores users: normalized (lowercase). This runs in __init__, before
        JupyterHub normalizes `admin_users` itself, so `Alice.Smith` in the config is `alice.smith` here."""
        return {self.normalize_username(name) for name in self.admin_users}

    def seed_admins(self):
        passwords = self._initial_passwords()
        for name in sorted(self._admin_names()):
            if UserInfo.find(self.db, name) is not None:
                continue
            if name not in passwords:
                self.log.warning("native: admin %s has no initial password; the name stays reserved", name)
                continue
            hashed = bcrypt.hashpw(passwords[name].encode(), bcrypt.gensalt())
            self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
            self.log.info("native: created admin account %s", name)
        self.db.commit()

    def create_user(self, username, password, **kwargs):
        if self.normalize_username(username) in self._admin_names():
            self.log.warning("native: refused a signup for admin name %s", username)
            return None
        return super().create_user(username, password, **kwargs)

    def check_allowed(self, username, authentication=None):
        if self.normalize_username(username) in self._admin_names():
            return True
        info = self.get_user(username)
        return bool(info and info.is_authorized)
