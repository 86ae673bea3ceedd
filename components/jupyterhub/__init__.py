"""JupyterHub on the cluster: pure builders (settings -> chart values and manifests) and the component."""
