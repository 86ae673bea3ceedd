"""The bundle's machinery for a connected machine with Python alone: an OCI registry client (`oci`), the
tarball `ctr images import` reads (`ociarchive`), the snap store client (`snapstore`), resumable verified
downloads (`fetch`), progress lines (`progress`), the lock-versus-files check (`check`) and image builds
(`build`). `scripts/bundle.py` drives them."""


class BundleError(Exception):
    """A download, a registry or a store answer that the bundle cannot use; the message says what to do."""
