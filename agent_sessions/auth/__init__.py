"""Who is calling: the caller of a request (open mode, the bootstrap admin key, or a
stored API key) and what it may act for. Keys themselves are stored by ``storage.keys``."""

from .identity import BOOTSTRAP_ADMIN_USER, OPEN_MODE_CALLER, OPEN_MODE_USER, Caller, authenticate

__all__ = ["BOOTSTRAP_ADMIN_USER", "OPEN_MODE_CALLER", "OPEN_MODE_USER", "Caller", "authenticate"]
