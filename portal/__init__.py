"""jhub usage and billing portal.

Rooms: ``settings`` (validated configuration), ``models``/``db``/``migrations`` (storage),
``collector`` (Kubernetes pods -> sessions), ``billing`` (costs and reports), ``mysql_sync``
(optional export to an external MySQL ``pod_report`` table).
"""
