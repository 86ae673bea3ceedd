"""jhub: a multi-user JupyterHub platform on MicroK8s, from bare Ubuntu GPU servers. See README.md."""

from components.program import run

run()
