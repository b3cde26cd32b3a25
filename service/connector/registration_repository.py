"""SQL for declarative connectors and their spec versions."""

from collections.abc import Sequence

from sqlalchemy import func, select, tuple_

from service.models.declarative_connector import StoredConnector, StoredConnectorVersion
from service.repository import Repository

REGISTRATION_LOCK = 0x68656463  # "hedc": the lock on registering connectors


class RegistrationRepository(Repository):
    async def get(self, name: str, *, for_update: bool = False) -> StoredConnector | None:
        statement = select(StoredConnector).where(StoredConnector.name == name)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def versions(self, name: str) -> Sequence[StoredConnectorVersion]:
        statement = (
            select(StoredConnectorVersion)
            .where(StoredConnectorVersion.name == name)
            .order_by(StoredConnectorVersion.version)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def version(self, name: str, version: int) -> StoredConnectorVersion | None:
        statement = select(StoredConnectorVersion).where(
            StoredConnectorVersion.name == name, StoredConnectorVersion.version == version
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def versions_of(
        self, wanted: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], StoredConnectorVersion]:
        """The stored versions named by (connector, version), in one statement."""
        if not wanted:
            return {}
        statement = select(StoredConnectorVersion).where(
            tuple_(StoredConnectorVersion.name, StoredConnectorVersion.version).in_(wanted)
        )
        rows = (await self.session.execute(statement)).scalars()
        return {(row.name, row.version): row for row in rows}

    async def hold_registrations(self) -> None:
        """Until this transaction ends, no other registers a connector: the count and the
        one registered are one step (the deployment's limit holds when many register at
        once)."""
        await self._one_at_a_time(REGISTRATION_LOCK, "", StoredConnector)

    async def count(self) -> int:
        """How many declarative connectors are registered."""
        return int(
            await self.session.scalar(select(func.count()).select_from(StoredConnector)) or 0
        )

    async def all_connectors(self) -> Sequence[StoredConnector]:
        statement = select(StoredConnector).order_by(StoredConnector.name)
        return (await self.session.execute(statement)).scalars().all()

    async def all_versions(self) -> Sequence[StoredConnectorVersion]:
        statement = select(StoredConnectorVersion).order_by(
            StoredConnectorVersion.name, StoredConnectorVersion.version
        )
        return (await self.session.execute(statement)).scalars().all()

    async def add(self, *rows: StoredConnector | StoredConnectorVersion) -> None:
        self.session.add_all(rows)
        await self.session.flush()
