"""The storage view over real directories: sizes, owners and last use; removal of idle users' directories
only when confirmed, audited, and never outside the base (no traversal, no symlinks followed)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN, make_portal

from portal.app.services.storage_view import kubespawner_escape, remove_all_idle

pytest_plugins = ["conftest_api"]


def age(path, portal, days: float) -> None:
    stamp = (portal.now - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


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
        age(base / name, portal, 200)
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
    reply = remove(storage, "bob", idle_days=1, confirm="bob")
    assert reply.status_code == 409 and (storage.storage / "bob").is_dir()


@pytest.mark.parametrize("name", ["..", ".", "%2e%2e", "..%2f..%2fetc", "escape", "README", "nobody"])
def test_nothing_outside_the_base_or_not_a_directory_is_removed(storage, name):
    reply = remove(storage, name, idle_days=1, confirm=name)
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
    reply = alice.post("/api/storage/alice/remove", json={"idle_days": 1, "confirm": "alice"},
                       headers={"X-CSRF-Token": storage.csrf(alice)})
    assert reply.status_code == 403 and (storage.storage / "alice").is_dir()


@pytest.mark.parametrize("body", [{"idle_days": 0, "confirm": "alice"}, {"confirm": "alice"},
                                  {"idle_days": "old", "confirm": "alice"}])
def test_bad_removal_requests_are_refused(storage, body):
    assert remove(storage, "alice", **body).status_code == 422 and (storage.storage / "alice").is_dir()


def test_automatic_removal_takes_only_idle_directories_and_audits_each(storage):
    removed = remove_all_idle(storage.engine, storage.storage, idle_days=150, now=storage.now, walk_limit=1000)
    assert removed == ["orphan"]
    assert sorted(p.name for p in storage.storage.iterdir()) == ["README", "alice", "bob", "escape"]
    assert [(e["actor"], e["target"], e["detail"]["result"]) for e in storage.audit()] == [
        ("system:auto-remove", "orphan", "ok")]


def test_sizes_of_huge_trees_are_unknown_rather_than_slow(storage, pg_url, cluster):
    made = make_portal(pg_url, cluster, storage.storage, storage_walk_max_entries=2)
    dirs = listing(made.client(token=ADMIN_TOKEN))
    assert dirs["alice"]["size_bytes"] is None and dirs["bob"]["size_bytes"] == 10
    made.engine.dispose()


def test_kubespawner_escaped_directory_names_find_their_user(portal):
    assert kubespawner_escape("Alice.B") == "-41lice-2e-42"
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
