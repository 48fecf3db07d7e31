"""The app's server: Streamlit (`streamlit_app.py`) plus the labeling view's, the Sequences page's edits',
sign-in's and uploads' own HTTP routes.

`scriptlabel serve` runs `streamlit run app_server.py`; Streamlit finds the `app` below and serves both.
Settings come from the environment once, here, at the entry point.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labeling.settings import Settings, process_defaults

process_defaults()  # the entry point: before anything imports xgboost or keras

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware

from labeling.accounts import api as account_api
from labeling.accounts.access import check_serve_host, oidc_configured
from labeling.ingest import upload_api
from labeling.sequences import api as sequence_api
from labeling.session.api import routes
from store.db import open_db
from store.types import ScriptlabelError

settings = Settings.from_env(os.environ)
oidc = oidc_configured()
# `streamlit run app_server.py` directly (not through `scriptlabel serve`) gets the same rule: a network
# address only with sign-in configured. An empty address means every interface to Streamlit.
try:
    check_serve_host(open_db(settings.db_path), st.get_option("server.address") or "0.0.0.0", oidc=oidc)
except ScriptlabelError as exc:
    sys.exit(f"error: {exc}")
app = st.App(str(Path(__file__).with_name("streamlit_app.py")),
             routes=routes(settings.db_path, retrain_every=settings.retrain_every, oidc=oidc)
             + sequence_api.routes(settings.db_path, oidc=oidc)
             + account_api.routes(settings.db_path, session_ttl_s=settings.session_ttl_s, oidc=oidc)
             + upload_api.routes(settings.db_path, limits=settings.ingest_limits, oidc=oidc),
             middleware=[Middleware(account_api.SignInRedirect, db_path=settings.db_path, oidc=oidc)])
