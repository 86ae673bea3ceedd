"""Collector: lists and watches JupyterHub user pods and keeps pod_sessions exact.

``pods`` reads a pod, ``core`` turns observations into session changes (pure), ``store`` writes them
set-based, ``kube`` talks to the Kubernetes API, ``runner`` schedules list/watch/resync with backoff,
``service`` assembles a collector (and the MySQL exporter) from the settings.
"""
