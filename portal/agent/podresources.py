"""The kubelet's pod-resources API (``k8s.io/kubelet/pkg/apis/podresources/v1``), client side.

The messages are built here with protobuf's descriptor API from the fields the agent reads (field numbers
as in the public v1 ``api.proto``; fields it does not read are skipped on the wire, as protobuf does), so no
generated code is committed and no protoc runs at build time. ``podresources_v1.proto`` beside this file
states the same messages in .proto form for readers.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "v1.PodResourcesLister"
LIST_METHOD = f"/{SERVICE}/List"
DEFAULT_SOCKET = "/var/snap/microk8s/common/var/lib/kubelet/pod-resources/kubelet.sock"

_F = descriptor_pb2.FieldDescriptorProto
# message -> [(field, number, type, repeated, message type)]
_MESSAGES = {
    "ListPodResourcesRequest": [],
    "ListPodResourcesResponse": [("pod_resources", 1, _F.TYPE_MESSAGE, True, "PodResources")],
    "PodResources": [("name", 1, _F.TYPE_STRING, False, None), ("namespace", 2, _F.TYPE_STRING, False, None),
                     ("containers", 3, _F.TYPE_MESSAGE, True, "ContainerResources")],
    "ContainerResources": [("name", 1, _F.TYPE_STRING, False, None),
                           ("devices", 2, _F.TYPE_MESSAGE, True, "ContainerDevices"),
                           ("cpu_ids", 3, _F.TYPE_INT64, True, None)],
    "ContainerDevices": [("resource_name", 1, _F.TYPE_STRING, False, None),
                         ("device_ids", 2, _F.TYPE_STRING, True, None)],
}


def _build() -> dict[str, type]:
    proto = descriptor_pb2.FileDescriptorProto(name="jhub/agent/podresources_v1.proto", package="v1",
                                               syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field, number, kind, repeated, type_name in fields:
            message.field.add(name=field, number=number, type=kind,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
                              **({"type_name": f".v1.{type_name}"} if type_name else {}))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"v1.{name}")) for name in _MESSAGES}


MESSAGES = _build()
ListPodResourcesRequest = MESSAGES["ListPodResourcesRequest"]
ListPodResourcesResponse = MESSAGES["ListPodResourcesResponse"]


class PodResourcesUnavailable(Exception):
    """The kubelet's pod-resources socket cannot be used; the message says why."""


@dataclass(frozen=True)
class DeviceAllocation:
    namespace: str
    pod: str
    container: str
    resource: str
    device_id: str  # as the device plugin names it: GPU-<uuid>, MIG-<uuid>, or GPU-<uuid>::<n> when time-sliced

    @property
    def device_uuid(self) -> str:
        """The NVML UUID the id stands for (time-sliced replicas share their GPU's)."""
        return self.device_id.split("::", 1)[0]


def allocations(response, *, resource_prefix: str = "nvidia.com/") -> list[DeviceAllocation]:
    """Every device of a matching resource, per pod and container, from a List response."""
    found = []
    for pod in response.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                if not devices.resource_name.startswith(resource_prefix):
                    continue
                found += [DeviceAllocation(pod.namespace, pod.name, container.name, devices.resource_name, device_id)
                          for device_id in devices.device_ids]
    return sorted(found, key=lambda a: (a.device_id, a.namespace, a.pod, a.container))


class PodResourcesClient:
    """``PodResourcesLister.List`` over the kubelet's unix socket."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout: float = 5.0) -> None:
        import grpc

        self._grpc = grpc
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel = grpc.insecure_channel(f"unix://{socket_path}")
        self._list = self._channel.unary_unary(LIST_METHOD, request_serializer=ListPodResourcesRequest.SerializeToString,
                                               response_deserializer=ListPodResourcesResponse.FromString)

    def list(self, *, resource_prefix: str = "nvidia.com/") -> list[DeviceAllocation]:
        try:
            response = self._list(ListPodResourcesRequest(), timeout=self.timeout)
        except self._grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "ERROR"
            raise PodResourcesUnavailable(f"kubelet pod-resources at {self.socket_path}: {code}") from None
        return allocations(response, resource_prefix=resource_prefix)

    def close(self) -> None:
        self._channel.close()
