"""What the cluster needs from the offline bundle: the MicroK8s snaps (by channel, see `bundle/needs.py`) and the
images of MicroK8s itself and of each enabled addon (lock feature tags `microk8s` and `addon:<name>`)."""

from __future__ import annotations

from ..settings import Settings

FEATURE = "microk8s"


def bundle_tags(settings: Settings) -> set[str]:
    return {FEATURE} | {f"addon:{line.split(':', 1)[0]}" for line in settings.microk8s.addons}
