"""The portal's web application: API, sign-in and pages.

``factory`` builds the app; ``settings`` (web settings), ``context`` (what requests use), ``auth``
(identity), ``routes`` (JSON API, one file per area), ``pages`` (HTML), ``services`` (the work).
"""

from portal.app.factory import create_app

__all__ = ["create_app"]
