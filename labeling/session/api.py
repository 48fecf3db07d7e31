"""HTTP routes of the labeling view, served by the app's own server beside Streamlit (`app_server.py`).

The browser sends its events here directly instead of through Streamlit reruns, which a fluent annotator
outpaces (a rerun is cut short by the next key). Each request is one call into `labeling.session.sync` on
this thread's own database connection (a sqlite connection is never shared by overlapping requests).

With sign-in on (any account, or OIDC), every request needs a valid session (cookie, or the header the
view of an OIDC user sends) and the annotator is the signed-in person, whatever name the body carries;
scripts restricted to other people do not exist for it. Without sign-in (single-user on loopback) the
body's name is used, as before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from labeling.accounts import access

from labeling.session import sync as label_sync
from labeling.accounts.api import session_token
from store import accounts
from store import scripts as script_store
from store.db import ThreadConnections, database_uid
from store.types import ScriptlabelError

log = logging.getLogger("scriptlabel.label_api")
HEADER = "x-scriptlabel"  # a custom header: a cross-site form cannot send it, so no other site can label here
MAX_BODY = 2_000_000


class _Refused(Exception):
    def __init__(self, response: Response):
        self.response = response


class Guard:
    """The checks every route of the app's own makes before it acts: who asks (the session), that the request
    comes from the app's page (a custom header a cross-site form cannot send), and that the page was opened
    on this database."""

    def __init__(self, db, *, oidc: bool = False):
        self.db, self.oidc = db, oidc

    def identity(self, token: str | None) -> access.Identity | None:
        """The signed-in person; None in single-user mode; raises _Refused (401) without a valid session."""
        if not access.sign_in_enabled(self.db(), oidc=self.oidc):
            return None
        user = accounts.session_user(self.db(), token)
        if user is None:
            raise _Refused(JSONResponse({"error": "sign in first: your session has ended", "signin": True}, 401))
        return access.from_user(user, via="session")

    @staticmethod
    def checked(request: Request) -> Response | None:
        if request.headers.get(HEADER) != "1":
            return JSONResponse({"error": "requests to this address come from the app's pages only"}, 403)
        return None

    def same_database(self, payload: dict) -> Response | None:
        if payload.get("database") != database_uid(self.db()):
            return JSONResponse({"error": "this page was opened on another database: reload the page",
                                 "reload": True}, 409)
        return None


def routes(db_path: str | Path, *, retrain_every: int = 10, oidc: bool = False) -> list[Route]:
    """The labeling view's routes for the database at `db_path` (made absolute once, here)."""
    db_path = Path(db_path).resolve()
    db = ThreadConnections(db_path).get
    guard = Guard(db, oidc=oidc)
    identity, checked, same_database = guard.identity, guard.checked, guard.same_database

    def sync_endpoint(request_body: bytes, token: str | None) -> Response:
        try:
            payload = json.loads(request_body)
        except ValueError:
            return JSONResponse({"error": "the request is not JSON"}, 400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the request must be a JSON object"}, 400)
        if (wrong := same_database(payload)) is not None:
            return wrong
        try:
            who = identity(token)
        except _Refused as refused:
            return refused.response
        if who is not None:
            payload["annotator"] = who.name  # the session says who labels, never the page's data
        try:
            request = label_sync.SyncRequest.parse(payload)
            access.require(who or access.single_user(request.annotator), "label")
            hidden = access.hidden_scripts(db(), who) if who is not None else set()
            if request.script_id in hidden:
                return JSONResponse({"error": f"no script with id {request.script_id}"}, 404)
            return JSONResponse(label_sync.sync(db(), request, db_path=db_path, retrain_every=retrain_every,
                                                hidden_scripts=hidden))
        except ScriptlabelError as exc:
            return JSONResponse({"error": str(exc)}, 400)

    async def sync(request: Request) -> Response:
        if (refused := checked(request)) is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "too many events at once"}, 413)
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(sync_endpoint, body, session_token(request))
        except Exception:  # never a traceback in the browser; the events stay in the tab and are sent again
            log.exception("labeling sync failed")
            return JSONResponse({"error": "the server could not store the last labels; they are kept in this "
                                          "browser and sent again"}, 500)

    def jump_endpoint(params, token: str | None) -> Response:
        try:
            who = identity(token)
        except _Refused as refused:
            return refused.response
        try:
            script_id = label_sync._int(params.get("script_id"), "script_id")
            if who is not None:
                access.require_script(db(), who, script_id)
            line_no = params.get("line_no")
            page = params.get("page")
            item = label_sync.item_at(db(), script_id=script_id,
                                      line_no=label_sync._int(line_no, "line") if line_no else None,
                                      page=label_sync._int(page, "page") if page else None)
            # an overlap line shows the signed-in person only their own label
            return JSONResponse({"item": label_sync.describe_items(db(), [item], annotator=who.name if who else None)[0]})
        except ScriptlabelError as exc:
            return JSONResponse({"error": str(exc)}, 400)

    async def jump(request: Request) -> Response:
        if (refused := checked(request)) is not None:
            return refused
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(jump_endpoint, request.query_params, session_token(request))
        except Exception:
            log.exception("labeling jump failed")
            return JSONResponse({"error": "could not find that line"}, 500)

    def page_endpoint(script_id: int, page: int, token: str | None) -> Response:
        try:
            who = identity(token)
        except _Refused as refused:
            return refused.response
        if who is not None and script_id in access.hidden_scripts(db(), who):
            return Response(status_code=404)
        path = script_store.page_image(db(), script_id, page)
        if path is None:
            return Response(status_code=404)
        # Page images never change once stored (a re-ingest makes a new script id).
        return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})

    async def page_image(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            script_id, page = int(request.path_params["script_id"]), int(request.path_params["page"])
        except ValueError:
            return Response(status_code=404)
        return await run_in_threadpool(page_endpoint, script_id, page, session_token(request))

    def release_endpoint(body: bytes, token: str | None) -> Response:
        try:
            who = identity(token)
        except _Refused as refused:
            return refused.response
        try:
            payload = json.loads(body)
            name = who.name if who is not None else str(payload["annotator"])
            label_sync.release_tab(db(), annotator=name, tab=str(payload["tab"]))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "bad release request"}, 400)
        return JSONResponse({"released": True})

    async def release(request: Request) -> Response:
        if (refused := checked(request)) is not None:
            return refused
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(release_endpoint, await request.body(), session_token(request))

    return [
        Route("/api/label/sync", sync, methods=["POST"]),
        Route("/api/label/jump", jump, methods=["GET"]),
        Route("/api/label/release", release, methods=["POST"]),
        Route("/api/label/page/{script_id}/{page}", page_image, methods=["GET"]),
    ]
