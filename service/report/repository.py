"""All SQL about stored reports and the decisions taken on them."""

from sqlalchemy import select

from service.models import Decision, Report
from service.repository import Repository


class ReportRepository(Repository):
    async def get(self, verification_id: str) -> Report | None:
        """The report stored for a verification, if any."""
        return await self.session.get(Report, verification_id)

    async def decision_id(self, verification_id: str) -> str | None:
        """The id of the decision taken on a verification's report, if any."""
        return await self.session.scalar(
            select(Decision.id).where(Decision.verification_id == verification_id)
        )
