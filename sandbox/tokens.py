"""OAuth 2.0 client-credentials tokens for the agencies that ask for one (the tax agency).

Fixed sandbox credentials; tokens live `TOKEN_LIFE_S` seconds, and revoking them all
imitates a partner that expired or rotated them early (clients must fetch a new one on 401).
"""

import secrets
import time
from dataclasses import dataclass, field

CLIENT_ID = "hedui-sandbox"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - a documented test credential of the sandbox
TOKEN_LIFE_S = 600


@dataclass
class Tokens:
    issued: int = 0
    _live: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        self._live[token] = time.monotonic() + TOKEN_LIFE_S
        self.issued += 1
        return token

    def valid(self, token: str) -> bool:
        expires = self._live.get(token)
        return expires is not None and time.monotonic() < expires

    def revoke_all(self) -> int:
        count = len(self._live)
        self._live.clear()
        return count

    @property
    def live(self) -> int:
        now = time.monotonic()
        return sum(1 for expires in self._live.values() if now < expires)
