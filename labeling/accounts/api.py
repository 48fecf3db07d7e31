"""Sign-in with a local account: a small self-contained form, an HttpOnly session cookie, sign-out.

Served beside Streamlit (`app_server.py`) at /api/account/* (Streamlit keeps /auth/* for `st.login`).
The pages read the cookie through `st.context.cookies` and resolve it with `store.accounts.session_user`;
the labeling view's routes read it from each request (labeling/session/api.py).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from store import accounts
from store.db import ThreadConnections

log = logging.getLogger("scriptlabel.account_api")
COOKIE = "scriptlabel_session"
SESSION_HEADER = "x-scriptlabel-session"  # the labeling view of an OIDC user sends its token here
LOGIN_PATH = "/api/account/login"
LOGOUT_PATH = "/api/account/logout"
MAX_FORM = 10_000

_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>Sign in · scriptlabel</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f6f8; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: .6rem;
       box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 1.4rem; margin: 0 0 1rem; }} label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; background: #ff4b4b; color: #fff;
         border: 0; border-radius: .4rem; cursor: pointer; }}
.error {{ color: #b00020; margin: .6rem 0 0; }} .note {{ color: #555; font-size: .9rem; }}
</style></head>
<body><main>
<h1>Sign in to scriptlabel</h1>
{message}
<form method="post" action="{action}" id="sign-in">
<input type="hidden" name="next" value="{next}">
<label for="name">Name</label><input id="name" name="name" autocomplete="username" required autofocus value="{name}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{oidc}
</main></body></html>
"""

_SIGNED_OUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out · scriptlabel</title></head>
<body style="font-family: system-ui, sans-serif; margin: 12vh auto; max-width: 22rem">
<form method="post" action="{action}"><p>Sign out of scriptlabel?</p><button type="submit">Sign out</button></form>
</body></html>
"""


RESET_PATH = "/api/account/reset"
MIN_PASSWORD = 8

_RESET_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Set your password · scriptlabel</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f6f8; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: .6rem;
       box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 1.4rem; margin: 0 0 1rem; }} label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; background: #ff4b4b; color: #fff;
         border: 0; border-radius: .4rem; cursor: pointer; }}
.error {{ color: #b00020; margin: .6rem 0 0; }}
</style></head>
<body><main>
<h1>{title}</h1>
{message}
{form}
</main></body></html>
"""


def _reset_page(*, title: str, message: str = "", token: str | None = None, name: str = "",
                status: int = 200) -> HTMLResponse:
    form = "" if token is None else f"""<form method="post" action="{RESET_PATH}" id="set-password">
<input type="hidden" name="token" value="{html.escape(token, quote=True)}">
<input type="hidden" name="name" value="{html.escape(name, quote=True)}" autocomplete="username">
<label for="password">New password (at least {MIN_PASSWORD} characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="{MIN_PASSWORD}" autofocus>
<label for="again">The same again</label>
<input id="again" name="again" type="password" autocomplete="new-password" required minlength="{MIN_PASSWORD}">
<button type="submit">Set my password</button>
</form>"""
    body = _RESET_FORM.format(title=html.escape(title), form=form,
                              message=f'<p class="error" role="alert">{html.escape(message)}</p>' if message else "")
    return HTMLResponse(body, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                   "frame-ancestors 'none'"})


def safe_next(value: str | None) -> str:
    """A path on this site to go back to after sign-in; anything else (another site, //host) becomes "/"."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if (not value.startswith("/") or value.startswith("//") or "\\" in value or parts.scheme or parts.netloc
            or any(ord(c) < 32 for c in value)):
        return "/"
    if value.startswith("/api/account"):
        return "/"
    return value


def _form(*, next_path: str, message: str = "", name: str = "", status: int = 200, oidc: bool = False,
          headers: dict | None = None) -> HTMLResponse:
    body = _FORM.format(
        action=LOGIN_PATH, next=html.escape(next_path, quote=True), name=html.escape(name, quote=True),
        message=f'<p class="error" role="alert">{html.escape(message)}</p>' if message else "",
        oidc=(f'<p class="note">Or <a href="{html.escape(next_path, quote=True)}">sign in with your '
              "organization's account</a>.</p>") if oidc else "")
    return HTMLResponse(body, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                   "frame-ancestors 'none'", **(headers or {})})



async def _form_fields(request: Request, *, refused: str) -> dict | Response:
    """A posted form's fields, or the response refusing it: from another site (403) or too large (413)."""
    if not _same_origin(request):
        return Response(refused, status_code=403)
    body = await request.body()
    if len(body) > MAX_FORM:
        return Response("form too large", status_code=413)
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

def _same_origin(request: Request) -> bool:
    """A browser posting the form from another site sends that site's Origin: refuse it."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or request.headers.get(SESSION_HEADER)


def routes(db_path: str | Path, *, session_ttl_s: float = accounts.SESSION_TTL_S, oidc: bool = False) -> list[Route]:
    db_path = Path(db_path).resolve()
    db = ThreadConnections(db_path).get

    async def login_form(request: Request) -> Response:
        return _form(next_path=safe_next(request.query_params.get("next")), oidc=oidc)

    def sign_in(fields: dict, client: str, secure: bool) -> Response:
        name, password = fields.get("name", "")[:200], fields.get("password", "")[:1000]
        next_path = safe_next(fields.get("next"))
        try:
            user = accounts.authenticate(db(), name, password, client=client)
        except accounts.SignInError as exc:
            accounts.audit(db(), accounts.normalize_name(name)[:80] or "?", "sign_in_failed",
                           detail={"client": client, "reason": str(exc)})
            headers = {"Retry-After": str(int(exc.retry_after_s) + 1)} if exc.retry_after_s else None
            return _form(next_path=next_path, name=name, message=str(exc)[:1].upper() + str(exc)[1:] + ".",
                         status=429 if exc.retry_after_s else 401, oidc=oidc, headers=headers)
        token = accounts.create_session(db(), user.name, ttl_s=session_ttl_s)
        accounts.audit(db(), user.name, "sign_in", detail={"client": client, "via": "local"})
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(session_ttl_s), path="/", httponly=True, samesite="lax",
                            secure=secure)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def login(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        fields = await _form_fields(request, refused="sign-in from another site refused")
        if isinstance(fields, Response):
            return fields
        client = request.client.host if request.client else "?"
        try:
            return await run_in_threadpool(sign_in, fields, client, request.url.scheme == "https")
        except Exception:  # never a traceback in the browser
            log.exception("sign-in failed")
            return _form(next_path="/", message="The server could not sign you in; try again.", status=500)

    async def logout_form(request: Request) -> Response:
        return HTMLResponse(_SIGNED_OUT.format(action=LOGOUT_PATH), headers={"Cache-Control": "no-store"})

    def sign_out(token: str | None) -> None:
        user = accounts.session_user(db(), token)
        accounts.end_session(db(), token)
        if user is not None:
            accounts.audit(db(), user.name, "sign_out")

    async def logout(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if not _same_origin(request):
            return Response("sign-out from another site refused", status_code=403)
        await run_in_threadpool(sign_out, request.cookies.get(COOKIE))
        response = RedirectResponse(f"{LOGIN_PATH}?next={quote('/')}", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def reset_form_for(token: str | None) -> Response:
        name = accounts.reset_link_user(db(), token)
        if name is None:
            return _reset_page(title="This link does not work", status=410,
                               message="This password link was used already, has expired or was replaced by a "
                                       "newer one: ask an admin for a new link.")
        return _reset_page(title=f"Set a password for {name}", token=token, name=name)

    async def reset_form(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(reset_form_for, request.query_params.get("token"))

    def set_password(fields: dict) -> Response:
        token, password, again = (fields.get(k, "")[:1000] for k in ("token", "password", "again"))
        name = accounts.reset_link_user(db(), token)
        if name is None:
            return reset_form_for(None)
        problem = (f"The password is shorter than {MIN_PASSWORD} characters: choose a longer one."
                   if len(password) < MIN_PASSWORD else
                   "The two passwords differ: type the same one twice." if password != again else "")
        if problem:
            return _reset_page(title=f"Set a password for {name}", token=token, name=name, message=problem, status=400)
        try:
            accounts.use_reset_link(db(), token, password)
        except accounts.ResetLinkError:
            return reset_form_for(None)
        response = RedirectResponse(f"{LOGIN_PATH}?next={quote('/')}", status_code=303)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def reset(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        fields = await _form_fields(request, refused="a password set from another site is refused")
        if isinstance(fields, Response):
            return fields
        try:
            return await run_in_threadpool(set_password, fields)
        except Exception:  # never a traceback in the browser
            log.exception("setting a password through a link failed")
            return _reset_page(title="Your password was not set", status=500,
                               message="The server could not set it; open the link again and retry.")

    return [
        Route(RESET_PATH, reset_form, methods=["GET"]),
        Route(RESET_PATH, reset, methods=["POST"]),
        Route(LOGIN_PATH, login_form, methods=["GET"]),
        Route(LOGIN_PATH, login, methods=["POST"]),
        Route(LOGOUT_PATH, logout_form, methods=["GET"]),
        Route(LOGOUT_PATH, logout, methods=["POST"]),
    ]


# Paths Streamlit's page needs before any sign-in (its code, health, the sign-in routes themselves).
_OPEN_PREFIXES = ("/api/", "/_stcore/", "/static/", "/component/", "/favicon", "/auth/",
                  "/oauth2callback", "/app/static/")
# Paths that show the project's content or the server's state: a valid session or 401.
_PRIVATE_PREFIXES = ("/media/", "/_stcore/metrics")


def oidc_signed_in(cookies) -> bool:
    """Whether the request carries Streamlit's own sign-in cookie (`st.login`, OIDC) with a valid signature
    (Streamlit's cookie secret) and a signed-in user: what the app's pages go by for an OIDC user."""
    try:
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME
        from streamlit.web.server.starlette.starlette_websocket import _get_signed_cookie_with_chunks

        raw = _get_signed_cookie_with_chunks(dict(cookies), USER_COOKIE_NAME)
        return bool(raw) and json.loads(raw).get("is_logged_in") is True
    except Exception:  # no such cookie shape (another Streamlit version) or a broken one: not signed in
        log.warning("could not read Streamlit's sign-in cookie", exc_info=True)
        return False


class SignInRedirect:
    """ASGI middleware: with local accounts (and no OIDC), a page request without a valid session goes to
    the sign-in form, so an unauthenticated browser never even loads the app; Streamlit's `/media/` files
    and `/_stcore/metrics` answer 401 without one. With OIDC, Streamlit's own sign-in leads to the pages,
    and `/media/` and metrics answer 401 without its signed cookie (or a local session). The pages check
    again on every run (app_pages/common.identity) and the label API answers 401: this is the friendly
    front door, not the only lock."""

    def __init__(self, app, db_path: str | Path, oidc: bool = False):
        self.app = app
        self.db_path = Path(db_path).resolve()
        self.oidc = oidc
        self._db = ThreadConnections(self.db_path).get

    def _needs_sign_in(self, token: str | None) -> bool:
        db = self._db()
        return accounts.has_local_accounts(db) and accounts.session_user(db, token) is None

    def _media_refused(self, cookies) -> bool:
        if not self.oidc:
            return self._needs_sign_in(cookies.get(COOKIE))
        return not oidc_signed_in(cookies) and accounts.session_user(self._db(), cookies.get(COOKIE)) is None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "/")
        if path.startswith(_PRIVATE_PREFIXES):
            # Streamlit's media (charts, page images) and metrics: only for a signed-in browser, whatever its
            # Accept header says; a 401, not the form, since an <img> cannot follow a sign-in page.
            from starlette.concurrency import run_in_threadpool

            if await run_in_threadpool(self._media_refused, Request(scope).cookies):
                response = Response("sign in first", status_code=401, headers={"Cache-Control": "no-store"})
                return await response(scope, receive, send)
            return await self.app(scope, receive, send)
        if self.oidc or scope.get("method") != "GET":  # OIDC: Streamlit's st.login is the front door
            return await self.app(scope, receive, send)
        if path.startswith(_OPEN_PREFIXES) or "." in path.rsplit("/", 1)[-1]:
            return await self.app(scope, receive, send)
        from starlette.concurrency import run_in_threadpool

        request = Request(scope)
        if "text/html" not in request.headers.get("accept", "text/html"):
            return await self.app(scope, receive, send)
        if await run_in_threadpool(self._needs_sign_in, request.cookies.get(COOKIE)):
            query = scope.get("query_string", b"").decode("latin-1")
            target = safe_next(path + (f"?{query}" if query else ""))
            response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
            response.headers["Cache-Control"] = "no-store"
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)
