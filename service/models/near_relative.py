from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class NearRelative(SealedModel, Base):
    """A near relative of a staff member (近亲属备案). Append-only: revoked, never deleted.

    The relative's full ID number lives here (sealed) and nowhere else outside the database;
    matching goes through its blind index.
    """

    __tablename__ = "near_relatives"
    __table_args__ = (
        Index("ix_near_relatives_registered", "registered_at", "id"),
        Index("ix_near_relatives_region_code", "region_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    region_code: Mapped[str] = mapped_column(
        String(6), doc="GB/T 2260 code or prefix of where the staff member works"
    )
    staff_name_sealed: Mapped[str] = mapped_column(SealedText)
    staff_position: Mapped[str] = mapped_column(String(64))
    relative_id_number_sealed: Mapped[str] = mapped_column(SealedText)
    relative_id_number_blind: Mapped[str] = mapped_column(String(64), index=True)
    relative_name_sealed: Mapped[str] = mapped_column(SealedText)
    relationship: Mapped[str] = mapped_column(String(16))
    registered_by: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    registered_by_name: Mapped[str | None] = mapped_column(
        String(128), default=None, doc="Whom the registering key belonged to, when it registered"
    )
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    revoked_by_name: Mapped[str | None] = mapped_column(String(128), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(Text, default=None)

    staff_name = Sealed[str]("staff_name_sealed")
    relative_id_number = Sealed[str]("relative_id_number_sealed", blind="relative_id_number_blind")
    relative_name = Sealed[str]("relative_name_sealed")
