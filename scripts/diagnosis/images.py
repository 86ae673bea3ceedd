"""Images a node lacks: what the image lock and the stack's enabled features need (air-gapped mode, where
every node imports them), against the names each node reports in `status.images`."""

from __future__ import annotations

from .report import Section

# The kubelet lists at most this many images per node (--node-status-max-images, default 50): beyond it a
# missing name proves nothing.
KUBELET_LIST_CAP = 50


def needed(settings) -> list[tuple[str, tuple[str, ...], str]]:
    """(lock file path, refs, digest or "") of every image the stack's nodes import; [] when they pull."""
    from components.bundle.locks import load_lock
    from components.bundle.needs import needed_images

    from .source import ROOT

    if not settings.offline.air_gapped or settings.offline.uses_mirror:
        return []
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    return [(f.path, f.refs, f.digest or "") for f in needed_images(settings, lock)]


def check(nodes: list[dict], wanted: list[tuple[str, tuple[str, ...], str]] | None, stack: str | None) -> Section:
    section = Section("images")
    if wanted is None:
        section.say("images: not checked (give --stack NAME: which images a node needs depends on the stack)")
        return section
    if not wanted:
        section.say("images: nodes pull them (online mode or a registry mirror): nothing to compare")
        return section
    complete = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        listed = (node.get("status") or {}).get("images") or []
        names = {n for image in listed for n in image.get("names") or []}
        missing = []
        for path, refs, digest in wanted:
            at_digest = {f"{ref.rsplit(':', 1)[0]}@{digest}" for ref in refs if digest}
            if not (set(refs) | at_digest) & names:
                missing.append(refs[0] if refs else path)
        capped = len(listed) >= KUBELET_LIST_CAP
        section.data[name] = {"missing": missing, "listed": len(listed), "listCapped": capped}
        if not missing:
            complete.append(name)
        elif capped:
            section.say(f"{name}: {len(missing)} needed images not among the {len(listed)} the kubelet lists "
                        f"(it lists at most {KUBELET_LIST_CAP}); check with: sudo microk8s ctr images ls -q")
        else:
            section.problem(f"node {name} lacks {len(missing)} image(s): {', '.join(missing)}",
                            f"python scripts/bundle.py --check --stack {stack}; then re-run the node's import: "
                            f"pulumi up --target-replace \"$(pulumi stack --show-urns | grep -o "
                            f"'urn:[^ ]*::{name}-images$')\"")
    if complete:
        section.say(f"all {len(wanted)} needed images present on {', '.join(complete)}")
    return section
