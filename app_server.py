"""The app's server: Streamlit (`streamlit_app.py`) plus the labeling view's and sign-in's own HTTP routes.

`scriptlabel serve` runs `streamlit run app_server.py`; Streamlit finds the `app` below and serves both.
Settings come from the environment once, here, at the entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from labeling import account_api
from labeling.access import oidc_configured
from labeling.app_support import settings_from_env
from labeling.label_api import routes

settings = settings_from_env(os.environ)
oidc = oidc_configured()
app = st.App(str(Path(__file__).with_name("streamlit_app.py")),
             routes=routes(settings.db_path, retrain_every=settings.retrain_every, oidc=oidc)
             + account_api.routes(settings.db_path, session_ttl_s=settings.session_ttl_s, oidc=oidc),
             middleware=[Middleware(account_api.SignInRedirect, db_path=settings.db_path, oidc=oidc)])
