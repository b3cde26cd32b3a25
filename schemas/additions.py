"""Fields added to a stored or hashed model after it was first published.

A report is stored as JSON and hashed; its policy figures are hashed too. A field added
later must not change what an older report or policy serialises to, or a reproduction of
that report would no longer be byte for byte identical. Such fields are listed in
`omit_when_none` and left out of every dump (python and JSON alike) while they are None.
"""

from typing import ClassVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer


class OmitWhenNone(BaseModel):
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    # No return annotation: one would replace the model's own JSON schema in OpenAPI.
    @model_serializer(mode="wrap")
    def _omit_unset_additions(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            for name in self.omit_when_none:
                if data.get(name, 0) is None:
                    del data[name]
        return data
