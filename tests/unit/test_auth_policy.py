"""The request policy: what each principal may do, by method and path."""

from __future__ import annotations

from aift.auth.policy import is_change, refusal
from aift.auth.schemas import ROLE_SCOPES, Principal, Role, Scope

VIEWER = Principal(user_id="v", email="v@x", role=Role.viewer, scopes=ROLE_SCOPES[Role.viewer])
MEMBER = Principal(user_id="m", email="m@x", role=Role.member, scopes=ROLE_SCOPES[Role.member])
ADMIN = Principal(user_id="a", email="a@x", role=Role.admin, scopes=ROLE_SCOPES[Role.admin])
READ_TOKEN = MEMBER.model_copy(update={"scopes": frozenset({Scope.read}), "via": "token"})


def test_reads_and_inference_need_read_changes_need_write_admin_needs_admin() -> None:
    reads = [
        ("GET", "/api/v1/kb"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/chat"),
        ("POST", "/api/v1/kb/handbook/ask"),
        ("POST", "/api/v1/kb/handbook/search"),
        ("WS", "/ws/jobs"),
    ]
    for method, path in reads:
        assert refusal(VIEWER, method, path) is None, path
        assert not is_change(method, path), path
    changes = [("POST", "/api/v1/kb"), ("DELETE", "/api/v1/kb/x"), ("POST", "/api/pull")]
    for method, path in changes:
        assert is_change(method, path)
        assert refusal(VIEWER, method, path) is not None
        assert refusal(READ_TOKEN, method, path) is not None
        assert refusal(MEMBER, method, path) is None
    for path in ("/api/v1/admin/users", "/admin"):
        assert refusal(MEMBER, "GET", path) == "This needs an admin."
        assert refusal(ADMIN, "GET", path) is None
    assert refusal(Principal(), "DELETE", "/api/v1/admin/users/x") is None, "single-user mode"


def test_own_account_and_chats_need_a_sign_in_and_a_new_password_comes_first() -> None:
    for path in ("/api/v1/account/tokens", "/api/v1/conversations", "/api/v1/conversations/1"):
        assert refusal(VIEWER, "POST", path) is None
    fresh = MEMBER.model_copy(update={"must_change_password": True})
    assert refusal(fresh, "POST", "/api/v1/account/password") is None
    assert refusal(fresh, "GET", "/api/v1/account") is None
    assert "password" in (refusal(fresh, "GET", "/api/v1/kb") or "")
    assert "password" in (refusal(fresh, "POST", "/api/v1/account/tokens") or "")
    assert refusal(fresh, "POST", "/api/v1/kbx/search") is not None
