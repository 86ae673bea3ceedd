"""What the routes do, without HTTP: live pods, storage, limits edits, session listing, the audit log."""
