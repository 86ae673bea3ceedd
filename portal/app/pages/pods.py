"""Running pods page, and the admin's delete form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portal.app.context import get_context
from portal.app.deps import AdminUser, CurrentUser
from portal.app.pages.common import back_to, render
from portal.app.params import Namespace, PodName
from portal.app.services.errors import KubeUnavailable
from portal.app.services.pod_actions import delete_user_pod

router = APIRouter(include_in_schema=False)


@router.get("/pods", response_class=HTMLResponse)
def pods_page(request: Request, principal: CurrentUser) -> HTMLResponse:
    ctx = get_context(request)
    now = ctx.clock()
    try:
        pods, problem = ctx.live_pods().list(user=None if principal.admin else principal.name), None
    except KubeUnavailable as exc:
        pods, problem = [], f"Kubernetes API unavailable: {exc}"
    return render(request, "pods.html", principal, pods=pods, now=now, problem=problem,
                  status_code=200 if problem is None else 503)


@router.post("/pods/{namespace}/{name}/delete")
def delete_pod_form(request: Request, namespace: Namespace, name: PodName, principal: AdminUser,
                    confirm: Annotated[str, Form(max_length=253)] = "",
                    uid: Annotated[str | None, Form(max_length=64, pattern=r"^[0-9A-Za-z-]*$")] = None,
                    ) -> RedirectResponse:
    pod = delete_user_pod(get_context(request), actor=principal.name, namespace=namespace, name=name,
                          uid=uid or None, confirm=confirm.strip())
    return back_to(request, "/pods", f"Deleted pod {namespace}/{name} of {pod.user}.")
