"""Every process learns of registered or changed declarative connectors by polling.

The API, the workers and the CLI each keep the registry of their process in step with the
`declarative_connectors` table: a cheap query every few seconds compares what is in force
(versions, enabled, updated_at) with what was loaded, and only a change rebuilds anything.
Each spec version is compiled once per process and kept, so a verification planned with an
older version still runs with exactly that version. A version whose stored spec no longer
loads is kept as a stand-in that fails its source at once: an enabled connector is never
silently left out of new verifications.
"""

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import Connector
from connectors.declarative import ConnectorSpec, build_connector
from connectors.registry import ConnectorRegistry
from service.connector.registration_repository import RegistrationRepository
from service.connector.unloadable import unloadable_connector
from service.jobs.periodic import Periodic

log = structlog.get_logger(__name__)

Fingerprint = tuple[tuple[str, int, int | None, bool, str], ...]


class ConnectorRefresher:
    def __init__(
        self,
        registry: ConnectorRegistry,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        interval_s: float,
    ) -> None:
        self.registry = registry
        self.session_factory = session_factory
        self.interval_s = interval_s
        self._seen: Fingerprint | None = None
        self._built: dict[tuple[str, int], Connector] = {}
        self.shadowed: list[str] = []
        """Enabled registrations whose name a built-in or plugin connector holds (a plugin
        installed after the registration): not in force, the plugin answers under it."""
        self._periodic = Periodic("connector_refresh", interval_s, self.refresh)

    async def refresh(self) -> bool:
        """Load what changed since the last call; True when the registry changed."""
        async with self.session_factory() as session:
            repository = RegistrationRepository.from_session(session)
            connectors = await repository.all_connectors()
            fingerprint: Fingerprint = tuple(
                (c.name, c.latest_version, c.active_version, c.enabled, c.updated_at.isoformat())
                for c in connectors
            )
            if fingerprint == self._seen:
                return False
            titles = {c.name: c.title for c in connectors}
            unloadable: dict[tuple[str, int], Connector] = {}
            for row in await repository.all_versions():
                if (row.name, row.version) in self._built:
                    continue
                try:
                    spec = ConnectorSpec.model_validate(row.spec)
                except ValidationError:
                    # Stored specs were validated when registered; one that no longer is
                    # (a newer hedui) must not stop the process, nor drop the connector from
                    # new verifications: a stand-in fails its source at once (`review`).
                    log.error("connector_spec_unreadable", connector=row.name, version=row.version)
                    stored = row.spec if isinstance(row.spec, dict) else {}
                    response = stored.get("response")
                    unloadable[row.name, row.version] = unloadable_connector(
                        row.name,
                        titles.get(row.name, row.name),
                        row.version,
                        response.get("kind") if isinstance(response, dict) else None,
                    )
                    continue
                self._built[row.name, row.version] = build_connector(spec, str(row.version))
        self.shadowed = sorted(
            row.name for row in connectors if row.enabled and self.registry.is_code(row.name)
        )
        known = {**unloadable, **self._built}
        in_force = {
            c.name: known[c.name, c.active_version]
            for c in connectors
            if c.enabled
            and c.active_version is not None
            and (c.name, c.active_version) in known
            and not self.registry.is_code(c.name)
        }
        self.registry.set_declared(
            in_force,
            {(name, str(version)): built for (name, version), built in known.items()},
        )
        # No log line: commands print their results on stdout, where logs go too.
        self._seen = fingerprint
        return True

    def start(self) -> None:
        # The database may be away for a moment: a failed round is logged, the next one runs.
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
