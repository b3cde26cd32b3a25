from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, new_id, utcnow


class ApiKey(Base):
    """A caller's credential. Only a SHA-256 of the token is stored.

    A key is usable while it is neither revoked nor past `expires_at`; it is never deleted,
    so that decisions and audit events keep naming whom it belonged to.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), doc="The person or system holding the key")
    role: Mapped[str] = mapped_column(String(32))
    region_prefix: Mapped[str] = mapped_column(
        String(9), doc="'' means every region; 9 digits: one township"
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        default=None,
        doc="None: never (only internal keys that cannot call the API; `hedui apikey create` "
        "always sets one)",
    )
    last_used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=None, doc="Accurate to a minute: written at most once a minute"
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), default=None)
