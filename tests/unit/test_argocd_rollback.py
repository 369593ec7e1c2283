"""ArgoCD rollback without a hand-supplied history id: the previous revision, from the app."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.steps.argocd import previous_history_id
from schemas.errors import NonRetryableError
from tests.unit.test_runbooks_steps import TOKEN, book, engine
from tests.unit.test_runbooks_support import argo_app, local_server


def _app(history: list[tuple[int, str]], current: str | None) -> dict[str, Any]:
    return {"metadata": {"name": "shop"},
            "status": {"sync": {"revision": current} if current else {},
                       "history": [{"id": i, "revision": r} for i, r in history]}}


@pytest.mark.parametrize(("history", "current", "expected"), [
    ([(1, "a"), (2, "b")], "b", 1),
    ([(1, "a"), (2, "b"), (3, "c")], "c", 2),
    ([(1, "a"), (2, "b"), (3, "b")], "b", 1),  # the same revision synced twice: before both
    ([(4, "a"), (7, "b")], None, 4),  # no sync status: the last entry is what is deployed
    ([(1, "a"), (2, "b")], "c", 2),  # deployed outside the history: the latest entry
])
def test_the_previous_revision_is_found_in_the_history(
        history: list[tuple[int, str]], current: str | None, expected: int) -> None:
    assert previous_history_id(_app(history, current)) == expected


@pytest.mark.parametrize("history", [[], [(1, "a")], [(1, "a"), (2, "a")]])
def test_no_earlier_revision_is_refused(history: list[tuple[int, str]]) -> None:
    with pytest.raises(NonRetryableError, match="no earlier revision"):
        previous_history_id(_app(history, "a"))


async def test_a_rollback_step_without_an_id_goes_to_the_previous_revision() -> None:
    with local_server() as (url, state):
        state.apps["shop"] = argo_app("shop")  # history 1: aaa000, 2: aaa111 (deployed)
        rb = book([{"id": "back", "action_type": "argocd", "action": "rollback",
                    "parameters": {"server": url, "app": "shop", "token": "${secret:ARGO}"}}])
        result = await engine([]).run(rb, {})
        app = state.apps["shop"]
    assert result.ok, result.steps
    assert result.steps["back"].output["rolled_back_to"] == 1
    assert app["status"]["sync"]["revision"] == "aaa000"
    get, put = state.requests
    assert (get.method, put.method, put.body["id"]) == ("GET", "PUT", 1)
    assert put.headers["Authorization"] == f"Bearer {TOKEN}"
