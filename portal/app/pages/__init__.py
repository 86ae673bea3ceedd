"""Server-rendered pages (Jinja2): pods, sessions, billing, limits, storage, audit. Times in the
configured zone; every form carries the session's CSRF token."""
