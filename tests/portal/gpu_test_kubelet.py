"""A local kubelet pod-resources endpoint: a real gRPC server on a unix socket answering
``v1.PodResourcesLister/List`` with real protobuf messages built from what a test says is allocated."""

from __future__ import annotations

from concurrent import futures

import grpc

from portal.agent.podresources import ListPodResourcesResponse, SERVICE


class KubeletPodResources:
    def __init__(self, socket_path, pods: list[dict]) -> None:
        """``pods``: [{"namespace", "name", "containers": [{"name", "devices": {resource: [ids]}}]}]."""
        self.pods = pods
        self.calls = 0
        self.socket_path = str(socket_path)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(self._list, request_deserializer=lambda data: data,
                                                      response_serializer=lambda m: m.SerializeToString())
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"List": handler})])
        if self.server.add_insecure_port(f"unix://{self.socket_path}") == 0:
            raise RuntimeError(f"cannot listen on {self.socket_path}")
        self.server.start()

    def _list(self, request: bytes, context) -> object:
        self.calls += 1
        response = ListPodResourcesResponse()
        for pod in self.pods:
            entry = response.pod_resources.add(name=pod["name"], namespace=pod["namespace"])
            for container in pod["containers"]:
                made = entry.containers.add(name=container["name"])
                made.cpu_ids.extend([0, 1])
                for resource, ids in container["devices"].items():
                    made.devices.add(resource_name=resource, device_ids=ids)
        return response

    def close(self) -> None:
        self.server.stop(None)
