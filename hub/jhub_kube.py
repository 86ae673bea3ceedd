"""Read nodes and pods through kubespawner's shared kubernetes_asyncio client, as plain API JSON.

The hub's ServiceAccount needs cluster-wide `list` on nodes and pods (a ClusterRole; see hub/README.md).
"""

import asyncio
import json


async def _list_json(call, timeout: float, **kwargs) -> list:
    # _preload_content=False returns the raw response: the dicts keep the API's own (camelCase) shape.
    response = await asyncio.wait_for(call(_preload_content=False, **kwargs), timeout)
    try:
        return json.loads(await response.read()).get("items") or []
    finally:
        response.release()


async def list_nodes_and_pods(spawner) -> tuple[list, list]:
    """All nodes, and every pod that has not terminated, cluster-wide."""
    api, timeout = spawner.api, spawner.k8s_api_request_timeout
    return await asyncio.gather(
        _list_json(api.list_node, timeout),
        _list_json(
            api.list_pod_for_all_namespaces,
            timeout,
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
        ),
    )
