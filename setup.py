"""Package layout that pyproject.toml cannot express on its own.

The migrations live in the top-level `alembic/` directory (where the alembic CLI and
contributors expect them) but must travel inside the wheel: they are installed as the
package `hedui_migrations`, mapped from `alembic/`. The directory has no `__init__.py`
on purpose, so that it never shadows the alembic library when run from the source tree.
Everything else is declared in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(
            include=[
                "service",
                "service.*",
                "connectors",
                "connectors.*",
                "schemas",
                "schemas.*",
                "sandbox",
                "sandbox.*",
            ],
            exclude=["*.__pycache__"],
        ),
        "hedui_migrations",
        "hedui_migrations.versions",
    ],
    package_dir={"hedui_migrations": "alembic"},
)
