"""The storage view over real directories: sizes, owners and last use; removal of idle users' directories
only when confirmed, audited, and never outside the base (no traversal, no symlinks followed). Directory
names are KubeSpawner 7's safe slugs (the legacy escaped names still count); a directory without a known
owner goes only when the admin confirms it as an orphan, and never automatically."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN, make_portal

from portal.app.services.slugs import escape_slug, safe_slug
from portal.app.services.storage_view import remove_all_idle
from portal.meta import COLLECTOR_SINCE, write_time

pytest_plugins = ["conftest_api"]


def age(path, portal, days: float) -> None:
    stamp = (portal.now - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def age_tree(path, portal, days: float) -> None:
    """Make every entry of a tree (not only its top) last modified ``days`` before the portal's now."""
    for root, dirs, files in os.walk(path, topdown=False):
        for name in dirs + files:
            age(os.path.join(root, name), portal, days)
    age(path, portal, days)


def recording_since(portal, days: float) -> None:
    """The collector began recording sessions ``days`` ago."""
    with portal.engine.begin() as conn:
        write_time(conn, COLLECTOR_SINCE, portal.now - timedelta(days=days))


@pytest.fixture
def storage(portal, tmp_path):
    base = portal.storage
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    for name, files in {"alice": {"a.txt": 1000, "sub/b.bin": 4096}, "bob": {"notes.md": 10}, "orphan": {}}.items():
        for rel, size in files.items():
            path = base / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
        (base / name).mkdir(exist_ok=True)
    (base / "alice" / "link-out").symlink_to(outside)  # a user's link to somewhere else
    (base / "escape").symlink_to(outside)  # a directory-looking link at the top
    (base / "README").write_text("not a user directory")
    for name in ("alice", "bob", "orphan"):
        age_tree(base / name, portal, 200)
    portal.add_session("alice", start=portal.now - timedelta(days=100), end=portal.now - timedelta(days=99))
    portal.add_session("bob", start=portal.now - timedelta(hours=1))  # bob is running now
    portal.outside = outside
    return portal


def listing(client, **params) -> dict:
    return {d["name"]: d for d in client.get("/api/storage", params=params).json()["directories"]}


def test_admins_see_each_directory_with_size_owner_and_last_use(storage):
    dirs = listing(storage.client(token=ADMIN_TOKEN))
    assert set(dirs) == {"alice", "bob", "orphan"}  # files and symlinks are not user directories
    alice = dirs["alice"]
    assert alice["user"] == "alice" and alice["size_source"] == "walk"
    assert alice["size_bytes"] >= 1000 + 4096 and alice["owner_uid"] == os.getuid()
    assert alice["last_session_at"] == "2026-02-10T04:00:00+00:00" and alice["idle_days"] == 99
    assert dirs["bob"]["running"] and dirs["bob"]["idle_days"] == 0
    assert dirs["orphan"]["user"] is None and dirs["orphan"]["idle_days"] == 200
    assert set(listing(storage.client(token=ADMIN_TOKEN), idle_days=150)) == {"orphan"}


def test_users_see_only_their_own_directory(storage):
    assert set(listing(storage.client("alice"))) == {"alice"}


def remove(portal, name: str, **body):
    return portal.client(token=ADMIN_TOKEN).post(f"/api/storage/{name}/remove", json=body)


def test_an_idle_directory_is_removed_after_confirmation_and_audited(storage):
    reply = remove(storage, "alice", idle_days=90, confirm="alice")
    assert reply.status_code == 200 and reply.json()["removed"] == "alice"
    assert not (storage.storage / "alice").exists()
    assert (storage.outside / "precious.txt").read_text() == "keep me"  # the link inside was not followed
    [entry] = storage.audit()
    assert (entry["actor"], entry["action"], entry["target"]) == ("token:ops", "storage.remove", "alice")
    assert entry["detail"]["result"] == "ok" and entry["detail"]["idle_days"] == 90


@pytest.mark.parametrize("confirm", ["", "ALICE", "bob", "yes"])
def test_without_the_right_confirmation_nothing_is_removed(storage, confirm):
    reply = remove(storage, "alice", idle_days=90, confirm=confirm)
    assert reply.status_code == 400 and (storage.storage / "alice").is_dir() and storage.audit() == []


def test_a_directory_used_more_recently_than_asked_is_kept(storage):
    reply = remove(storage, "alice", idle_days=120, confirm="alice")
    assert reply.status_code == 409 and "99.0 days ago" in reply.json()["detail"]
    assert (storage.storage / "alice").is_dir()


def test_a_running_users_directory_is_kept(storage):
    reply = remove(storage, "bob", idle_days=30, confirm="bob")
    assert reply.status_code == 409 and (storage.storage / "bob").is_dir()


@pytest.mark.parametrize("name", ["..", ".", "%2e%2e", "..%2f..%2fetc", "escape", "README", "nobody"])
def test_nothing_outside_the_base_or_not_a_directory_is_removed(storage, name):
    reply = remove(storage, name, idle_days=30, confirm=name)
    assert reply.status_code in (400, 404, 409, 422), (name, reply.status_code)
    assert (storage.outside / "precious.txt").exists() and (storage.storage / "README").exists()
    assert (storage.storage / "escape").is_symlink()
    assert sorted(p.name for p in storage.storage.iterdir()) == ["README", "alice", "bob", "escape", "orphan"]


def test_the_removal_itself_refuses_links_and_names_with_slashes(storage):
    from portal.app.services.storage import StorageError, remove_directory

    for name in ("escape", "../outside", "alice/sub", "", ".."):
        with pytest.raises(StorageError):
            remove_directory(storage.storage, name)
    assert (storage.outside / "precious.txt").exists() and (storage.storage / "alice" / "sub").is_dir()


def test_users_cannot_remove_storage(storage):
    alice = storage.client("alice")
    reply = alice.post("/api/storage/alice/remove", json={"idle_days": 30, "confirm": "alice"},
                       headers={"X-CSRF-Token": storage.csrf(alice)})
    assert reply.status_code == 403 and (storage.storage / "alice").is_dir()


@pytest.mark.parametrize("body", [{"idle_days": 0, "confirm": "alice"}, {"confirm": "alice"},
                                  {"idle_days": "old", "confirm": "alice"}])
def test_bad_removal_requests_are_refused(storage, body):
    assert remove(storage, "alice", **body).status_code == 422 and (storage.storage / "alice").is_dir()


def test_automatic_removal_takes_only_idle_directories_of_known_users_and_audits_each(storage):
    recording_since(storage, 120)
    removed = remove_all_idle(storage.engine, storage.storage, idle_days=90, now=storage.now, walk_limit=1000)
    assert removed == ["alice"]  # bob is running; "orphan" has no known owner, so it is never removed by itself
    assert sorted(p.name for p in storage.storage.iterdir()) == ["README", "bob", "escape", "orphan"]
    assert [(e["actor"], e["target"], e["detail"]["result"]) for e in storage.audit()] == [
        ("system:auto-remove", "alice", "ok")]


@pytest.mark.parametrize("days", [None, 30])
def test_automatic_removal_waits_until_sessions_were_recorded_for_the_idle_period(storage, days):
    if days is not None:
        recording_since(storage, days)  # the collector began 30 days ago: "no session for 90 days" is unknown
    assert remove_all_idle(storage.engine, storage.storage, idle_days=90, now=storage.now, walk_limit=1000) == []
    assert (storage.storage / "alice").is_dir() and storage.audit() == []


def test_a_directory_with_no_known_owner_needs_an_orphan_confirmation(storage):
    reply = remove(storage, "orphan", idle_days=30, confirm="orphan")
    assert reply.status_code == 409 and "no known user" in reply.json()["detail"]
    assert (storage.storage / "orphan").is_dir() and storage.audit() == []
    reply = remove(storage, "orphan", idle_days=30, confirm="orphan", orphan=True)
    assert reply.status_code == 200 and not (storage.storage / "orphan").exists()
    [entry] = storage.audit()
    assert entry["target"] == "orphan" and entry["detail"]["orphan"] is True and entry["detail"]["result"] == "ok"


def test_a_recent_change_deep_in_the_tree_keeps_the_directory(storage):
    age(storage.storage / "alice" / "sub" / "b.bin", storage, 2)  # written two days ago; the top still 200 days
    assert listing(storage.client(token=ADMIN_TOKEN))["alice"]["idle_days"] == 2
    reply = remove(storage, "alice", idle_days=30, confirm="alice")
    assert reply.status_code == 409 and "2.0 days ago" in reply.json()["detail"]
    assert (storage.storage / "alice" / "sub" / "b.bin").exists()


def test_the_safe_slug_directory_of_a_running_user_is_kept(portal):
    """KubeSpawner 7 names Alice.B's directory alice-b---3a7a7327; it is hers, and she is running."""
    name = safe_slug("Alice.B")
    assert name == "alice-b---3a7a7327"
    (portal.storage / name).mkdir()
    (portal.storage / name / "notebook.ipynb").write_text("work")
    age_tree(portal.storage / name, portal, 200)
    portal.add_session("Alice.B", start=portal.now - timedelta(hours=1))  # running right now
    admin = portal.client(token=ADMIN_TOKEN)
    [entry] = admin.get("/api/storage").json()["directories"]
    assert (entry["user"], entry["running"], entry["idle_days"]) == ("Alice.B", True, 0)
    reply = admin.post(f"/api/storage/{name}/remove", json={"idle_days": 30, "confirm": name, "orphan": True})
    assert reply.status_code == 409 and "running server" in reply.json()["detail"]
    assert (portal.storage / name / "notebook.ipynb").exists() and portal.audit() == []
    recording_since(portal, 365)
    assert remove_all_idle(portal.engine, portal.storage, idle_days=30, now=portal.now, walk_limit=1000) == []
    assert (portal.storage / name).is_dir()


def test_a_name_that_may_belong_to_two_users_is_kept_while_either_runs(portal):
    """"a-2eb" is the safe slug of user a-2eb and the legacy escaped name of user a.b."""
    assert safe_slug("a-2eb") == escape_slug("a.b") == "a-2eb"
    (portal.storage / "a-2eb").mkdir()
    age_tree(portal.storage / "a-2eb", portal, 200)
    portal.add_session("a-2eb", start=portal.now - timedelta(days=100), end=portal.now - timedelta(days=99))
    portal.add_session("a.b", start=portal.now - timedelta(hours=1))
    admin = portal.client(token=ADMIN_TOKEN)
    [entry] = admin.get("/api/storage").json()["directories"]
    assert entry["owners"] == ["a-2eb", "a.b"] and entry["user"] == "a-2eb" and entry["running"] is True
    reply = admin.post("/api/storage/a-2eb/remove", json={"idle_days": 30, "confirm": "a-2eb"})
    assert reply.status_code == 409 and (portal.storage / "a-2eb").is_dir()


def test_slugs_are_kubespawners(portal):
    """The portal's own slug functions give exactly what the real KubeSpawner 7 gives."""
    import random

    from kubespawner import slugs

    names = ["alice", "Alice.B", "a-2eb", "a--b", "-lead", "trail-", "9lives", "x" * 48, "x" * 49, "x" * 70,
             "Ünïcødé", "用户", "a.b@example.org", "", "--", "---", "0", "-", "a_b", "MiXeD-Case.99"]
    rng = random.Random(7)
    alphabet = "abcXYZ019-._@ éü用"
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    for name in names:
        assert safe_slug(name) == slugs.safe_slug(name, max_length=48), name
        assert escape_slug(name) == slugs.escape_slug(name), name


def test_sizes_of_huge_trees_are_unknown_rather_than_slow_and_not_removable(storage, pg_url, cluster):
    made = make_portal(pg_url, cluster, storage.storage, storage_walk_max_entries=2)
    admin = made.client(token=ADMIN_TOKEN)
    dirs = listing(admin)
    assert dirs["alice"]["size_bytes"] is None and dirs["bob"]["size_bytes"] == 10
    assert dirs["alice"]["activity_known"] is False and dirs["alice"]["idle_days"] is None  # a newer file may hide
    assert "alice" not in listing(admin, idle_days=30)
    reply = admin.post("/api/storage/alice/remove", json={"idle_days": 30, "confirm": "alice"})
    assert reply.status_code == 409 and "PORTAL_STORAGE_WALK_MAX_ENTRIES" in reply.json()["detail"]
    assert (storage.storage / "alice").is_dir()
    made.engine.dispose()


def test_listings_walk_within_a_budget_and_reuse_recent_measurements(storage, pg_url, cluster):
    made = make_portal(pg_url, cluster, storage.storage, storage_walk_budget_entries=4)
    admin = made.client(token=ADMIN_TOKEN)
    first = listing(admin)  # alice alone has 4 entries (a.txt, sub, sub/b.bin, link-out): the budget is spent
    assert first["alice"]["size_bytes"] >= 1000 + 4096 and first["bob"]["size_bytes"] is None
    second = listing(admin)  # alice comes from the cache; the budget now reaches bob and "orphan"
    assert second["alice"] == first["alice"] and second["bob"]["size_bytes"] == 10
    (storage.storage / "alice" / "new.bin").write_bytes(b"x" * 10_000)
    assert listing(admin)["alice"]["size_bytes"] == first["alice"]["size_bytes"]  # cached for a while
    # ... but a removal measures afresh: the new file is found and keeps the directory
    reply = admin.post("/api/storage/alice/remove", json={"idle_days": 30, "confirm": "alice"})
    assert reply.status_code == 409 and "0.0 days ago" in reply.json()["detail"]
    made.engine.dispose()


def test_kubespawner_escaped_directory_names_find_their_user(portal):
    assert escape_slug("Alice.B") == "-41lice-2e-42"
    (portal.storage / "-41lice-2e-42").mkdir()
    portal.add_session("Alice.B", start=portal.now - timedelta(days=3), end=portal.now - timedelta(days=2))
    [entry] = portal.client(token=ADMIN_TOKEN).get("/api/storage").json()["directories"]
    assert entry["user"] == "Alice.B"
    (portal.storage / "alice").mkdir()  # someone else's
    [own] = portal.client("Alice.B").get("/api/storage").json()["directories"]
    assert own["name"] == "-41lice-2e-42"


def test_no_base_configured_or_missing_is_a_clear_4xx_5xx(portal, pg_url, cluster):
    missing = make_portal(pg_url, cluster, portal.storage / "not-mounted")
    reply = missing.client(token=ADMIN_TOKEN).get("/api/storage")
    assert reply.status_code == 503 and "is it mounted" in reply.json()["detail"]
    missing.engine.dispose()
    none = make_portal(pg_url, cluster, portal.storage, storage_base_path=None)
    assert none.client(token=ADMIN_TOKEN).get("/api/storage").status_code == 404
    none.engine.dispose()
