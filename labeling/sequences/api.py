"""The Sequences page's split, merge and undo as an HTTP route of the app's own (`app_server.py`), like labels.

A Streamlit button click is a one-off trigger: when the page's run it starts is replaced by another (the
reload after a complexity retrain), the click is dropped. So the page's edit controls
(app_pages/sequence_edit) post each click here instead: the click carries the sequence id and the version
of it the page showed, and an id of its own. The edit is applied in one transaction with its audit record
(labeling.sequences.edits → store.sequences); the same click sent again (a retry) returns what it did
the first time; a click on a sequence changed since (a double click, another tab) is refused with 409 and
changes nothing. Sign-in, the page header and the database are checked as for labels
(labeling.session.api.Guard); the role is checked where the edit runs (leads: `restructure`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from labeling.accounts import access
from labeling.accounts.api import session_token
from labeling.sequences import edits
from labeling.session.api import MAX_BODY, Guard, _Refused
from store import sequences as sequence_store
from store.db import ThreadConnections
from store.types import NotFoundError, ScriptlabelError

log = logging.getLogger("scriptlabel.sequence_api")
ACTIONS = ("split", "merge", "undo")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,80}$")


class EditRequestError(ScriptlabelError):
    """A request the route cannot read: which field, and what it must be."""


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise EditRequestError(f"{name} must be a whole number, not {str(value)[:20]!r}")
    return int(value)


@dataclass(frozen=True)
class EditRequest:
    """One click: `split` (sequence_id, version, at_line_no, title), `merge` (sequence_id, version) or `undo`
    (edit_id), with the click's own id."""

    action: str
    client_id: str
    sequence_id: int | None = None
    version: int | None = None
    at_line_no: int | None = None
    title: str = ""
    edit_id: int | None = None

    @classmethod
    def parse(cls, payload: dict) -> EditRequest:
        action = payload.get("action")
        if action not in ACTIONS:
            raise EditRequestError(f"action must be one of {', '.join(ACTIONS)}")
        client_id = payload.get("client_id")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            raise EditRequestError("client_id must be 8–80 letters, digits or _.:-")
        if action == "undo":
            return cls(action, client_id, edit_id=_int(payload.get("edit_id"), "edit_id"))
        title = payload.get("title") or ""
        if not isinstance(title, str) or len(title) > 200:
            raise EditRequestError("title must be text of at most 200 characters")
        return cls(action, client_id, sequence_id=_int(payload.get("sequence_id"), "sequence_id"),
                   version=_int(payload.get("version"), "version"),
                   at_line_no=_int(payload.get("at_line_no"), "at_line_no") if action == "split" else None,
                   title=title)


def apply_edit(db, who: access.Identity, request: EditRequest, *, hidden_scripts: set[int] = frozenset()) -> dict:
    """Apply one click (exactly once) and say what happened: {"edit": the stored edit, "show": the sequence
    the page shows next}. Raises ScriptlabelError subclasses (SequenceChangedError for a stale click)."""
    if request.action == "undo":
        script_id = sequence_store.sequence_edit(db, edit_id=request.edit_id).script_id
    else:
        script_id = sequence_store.get_sequence(db, request.sequence_id)["script_id"]
    if script_id in hidden_scripts:
        raise NotFoundError("no such sequence")
    if request.action == "split":
        shown = edits.split(db, who, request.sequence_id, request.at_line_no, title=request.title,
                            client_id=request.client_id, expected_version=request.version)
        edit = sequence_store.sequence_edit(db, client_id=request.client_id)
    elif request.action == "merge":
        shown = edits.merge_with_next(db, who, request.sequence_id, client_id=request.client_id,
                                      expected_version=request.version)
        edit = sequence_store.sequence_edit(db, client_id=request.client_id)
    else:
        edit = edits.undo(db, who, request.edit_id)
        shown = edit.sequence_id
    return {"edit": edit.as_json(), "show": int(shown)}


def routes(db_path: str | Path, *, oidc: bool = False) -> list[Route]:
    """The sequence-edit route for the database at `db_path`."""
    db = ThreadConnections(Path(db_path).resolve()).get
    guard = Guard(db, oidc=oidc)

    def edit_endpoint(body: bytes, token: str | None) -> Response:
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the request is not JSON"}, 400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the request must be a JSON object"}, 400)
        if (wrong := guard.same_database(payload)) is not None:
            return wrong
        try:
            who = guard.identity(token)
        except _Refused as refused:
            return refused.response
        hidden = access.hidden_scripts(db(), who) if who is not None else set()
        # single-user mode (loopback, no accounts): whoever sits here, under the name the page shows
        who = who or access.single_user(str(payload.get("annotator") or "anonymous")[:80])
        try:
            return JSONResponse(apply_edit(db(), who, EditRequest.parse(payload), hidden_scripts=hidden))
        except sequence_store.SequenceChangedError as exc:
            return JSONResponse({"error": str(exc), "changed": True}, 409)
        except (access.PermissionDeniedError, access.SignInRequiredError) as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except NotFoundError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except ScriptlabelError as exc:
            return JSONResponse({"error": str(exc)}, 400)

    async def edit(request: Request) -> Response:
        if (refused := guard.checked(request)) is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "the request is too large"}, 413)
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(edit_endpoint, body, session_token(request))
        except Exception:  # never a traceback in the browser; the page keeps the click and sends it again
            log.exception("sequence edit failed")
            return JSONResponse({"error": "the server could not make that change; nothing was changed, try again"},
                                500)

    return [Route("/api/sequences/edit", edit, methods=["POST"])]
