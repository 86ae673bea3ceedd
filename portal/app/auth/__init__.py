"""Who is asking: browser sessions from JupyterHub OAuth, bearer tokens, and the guard on every route.

``principal`` (the identity), ``tokens`` (hashed API tokens), ``cookies`` (signed session, OAuth state
and CSRF), ``hub`` (the hub's OAuth and user endpoints), ``guard`` (the dependencies routes use).
"""
