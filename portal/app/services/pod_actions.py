"""An admin deletes a user pod: confirmed by typing its name, audited before and after."""

from __future__ import annotations

from portal.app.context import PortalContext
from portal.app.services import audit
from portal.app.services.errors import DomainError, KubeUnavailable
from portal.app.services.live_pods import DeleteRefused, LivePod


def delete_user_pod(ctx: PortalContext, *, actor: str, namespace: str, name: str, uid: str | None,
                    confirm: str) -> LivePod:
    if confirm != name:
        raise DomainError(f"confirmation does not match: type the pod name {name!r} to delete it")
    live = ctx.live_pods()  # fails (503) before anything is logged when Kubernetes is not configured
    detail = {"namespace": namespace, "pod": name, "uid": uid}
    entry_id = audit.start(ctx.engine, actor=actor, action="pod.delete", target=f"{namespace}/{name}",
                           detail=detail, at=ctx.clock())
    try:
        pod = live.delete(namespace=namespace, name=name, uid=uid)
    except DeleteRefused as exc:
        audit.finish(ctx.engine, entry_id, detail={**detail, "reason": exc.reason}, result="refused")
        ctx.metrics.admin_actions.labels("pod.delete", "refused").inc()
        raise
    except KubeUnavailable as exc:
        audit.finish(ctx.engine, entry_id, detail={**detail, "reason": str(exc)}, result="failed")
        ctx.metrics.admin_actions.labels("pod.delete", "failed").inc()
        raise
    audit.finish(ctx.engine, entry_id, result="ok",
                 detail={**detail, "uid": pod.uid, "user": pod.user, "node": pod.node})
    ctx.metrics.admin_actions.labels("pod.delete", "ok").inc()
    return pod
