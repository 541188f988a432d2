"""Who may do what in the catalog.

Reads are public, and each says so (``@public``): with Authentication in the
App, a method that decides nothing is refused at import. Writing products
needs ``products:write``, registering users ``users:write``. Orders belong
to a user: only that user (a token whose subject is the user's id) may see,
place or cancel them, and placing or cancelling also needs ``orders:write``;
support staff with ``orders:admin`` may act on anyone's orders.

Settings, read when the app is built:

- ``CATALOG_JWT_SECRET``: the HS256 secret of bearer tokens; without it the
  development secret of ``twofold token`` is used, and a warning logged.
- ``CATALOG_JWT_AUDIENCE``: when set, tokens must carry this ``aud``.
- ``CATALOG_ENV=production`` refuses to start with the development secret.
"""

from __future__ import annotations

import os
from typing import Any

from twofold import Authentication, Identity, JwtBearer
from twofold.interceptors.bearer import DEVELOPMENT_SECRET

SECRET_ENV = "CATALOG_JWT_SECRET"
AUDIENCE_ENV = "CATALOG_JWT_AUDIENCE"
ENVIRONMENT_ENV = "CATALOG_ENV"
ADMIN_SCOPE = "orders:admin"


class InsecureConfiguration(RuntimeError):
    """The catalog was told it runs in production with the development secret."""


def owner(identity: Identity, request: Any) -> bool:
    """A user's orders are theirs: the token's subject is the user's id."""
    return identity.subject == str(request.user_id) or ADMIN_SCOPE in identity.scopes


def authentication() -> Authentication:
    secret = os.environ.get(SECRET_ENV) or DEVELOPMENT_SECRET
    # No warning here: this runs on import, where `twofold openapi` and friends
    # must print nothing but their output.
    if secret == DEVELOPMENT_SECRET and os.environ.get(ENVIRONMENT_ENV, "").lower() == "production":
        raise InsecureConfiguration(
            f"{ENVIRONMENT_ENV}=production but {SECRET_ENV} is not set: "
            "refusing to accept tokens signed with the development secret"
        )
    return Authentication(JwtBearer(secret=secret, audience=os.environ.get(AUDIENCE_ENV) or None))
