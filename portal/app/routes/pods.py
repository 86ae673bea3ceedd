"""Live user pods: everyone sees their own, admins see all and may delete one (confirmed, audited)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.params import Namespace, PodName
from portal.app.services.pod_actions import delete_user_pod

router = APIRouter(tags=["pods"])



class DeletePod(BaseModel):
    confirm: str = Field(max_length=253, description="The pod's name, typed again")
    uid: str | None = Field(default=None, max_length=64, pattern=r"^[0-9A-Za-z-]+$",
                            description="Delete only if the pod still has this UID")


@router.get("/api/pods", summary="Running user pods (yours, or all for admins)")
def list_pods(ctx: Context, principal: CurrentUser) -> dict:
    pods = ctx.live_pods().list(user=None if principal.admin else principal.name)
    now = ctx.clock()
    return {"now": now.isoformat(), "pods": [p.as_json(now) for p in pods]}


@router.post("/api/pods/{namespace}/{name}/delete", summary="Delete a user pod (admins; confirm with its name)")
def delete_pod(ctx: Context, namespace: Namespace, name: PodName, body: DeletePod, principal: AdminUser) -> dict:
    pod = delete_user_pod(ctx, actor=principal.name, namespace=namespace, name=name, uid=body.uid,
                          confirm=body.confirm)
    return {"deleted": f"{namespace}/{name}", "uid": pod.uid, "user": pod.user}
