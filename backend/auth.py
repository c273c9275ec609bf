"""HTTP Basic auth for the routes Label Studio sends credentials to (when BASIC_AUTH_USER and
BASIC_AUTH_PASS are set). werkzeug parses the header; both the user and the password are
always compared, in constant time."""
from __future__ import annotations

import functools
import hmac

from flask import current_app, request

from .errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Basic realm="ml-backend"'}


def check_basic_auth() -> None:
    """Raise a 401 ``ApiError`` unless the request carries the configured user and password."""
    config = current_app.config["SUSPICION"]
    if not config.basic_auth:
        return
    given = request.authorization
    basic = given is not None and given.type == "basic"
    user = (given.username or "") if basic else ""
    password = (given.password or "") if basic else ""
    ok_user = hmac.compare_digest(user.encode(), config.basic_auth_user.encode())
    ok_password = hmac.compare_digest(password.encode(), config.basic_auth_pass.encode())
    if not (ok_user and ok_password):
        raise ApiError("authentication required: this backend uses HTTP Basic auth "
                       "(set it on the ML backend in Label Studio)", 401, headers=CHALLENGE)


def basic_auth_required(view):
    """Decorator: the view runs only for requests that pass ``check_basic_auth``."""
    @functools.wraps(view)
    def checked(*args, **kwargs):
        check_basic_auth()
        return view(*args, **kwargs)
    return checked
