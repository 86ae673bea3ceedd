"""The Zero to JupyterHub chart this version deploys, and the images its parts run.

Every image is set explicitly in the values (not left to the chart's defaults), so what the release runs
is exactly what `offline-images/images.lock` bundles. `tests/jupyterhub/test_images.py` checks this table
against the chart's own defaults file.
"""

from __future__ import annotations

CHART_NAME = "jupyterhub"
CHART_VERSION = "4.4.0"
CHART_REPO = "https://hub.jupyter.org/helm-chart/"
RELEASE_NAME = "jupyterhub"

HUB_IMAGE = ("quay.io/jupyterhub/k8s-hub", "4.4.0")
PROXY_IMAGE = ("quay.io/jupyterhub/configurable-http-proxy", "5.2.0")
USER_SCHEDULER_IMAGE = ("registry.k8s.io/kube-scheduler", "v1.30.14")
PAUSE_IMAGE = ("registry.k8s.io/pause", "3.10.1")  # the continuous image puller's placeholder container

# Names of the chart's objects (fullnameOverride is empty, so the chart uses plain component names).
HUB_SERVICE_ACCOUNT = "hub"
PROXY_PUBLIC_SERVICE = "proxy-public"

# Where the hub pod finds our hub-side Python (hub/*.py) and templates (hub/templates/*).
HUB_CODE_DIR = "/usr/local/etc/jupyterhub/jhub"
# Logo and favicon: one ConfigMap each (never in the values: see hub_files.py), mounted here together.
HUB_BRANDING_DIR = "/usr/local/etc/jupyterhub/jhub-branding"
HUB_CA_FILE = "/usr/local/etc/jupyterhub/jhub-ca/ca.crt"  # jhub:auth.caCertificate, when set


def image_value(image: tuple[str, str]) -> dict:
    name, tag = image
    return {"name": name, "tag": tag}
