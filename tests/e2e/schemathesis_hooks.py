"""Schemathesis hooks for the fuzzing test (`SCHEMATHESIS_HOOKS`): a batch's NDJSON body is
text, one household per line, so it is sent the way text is."""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
