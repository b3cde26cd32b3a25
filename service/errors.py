"""The one error hierarchy: typed errors carrying their HTTP status and problem type.

They are mapped to RFC 9457 problem+json in one place, `service.error_handlers`; this
module imports no web framework, so the command line and the jobs can raise and catch
them without loading one.
"""

from datetime import datetime

from schemas.identity import hides_id_number
from schemas.problem import Problem, ProblemError, summary

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
"""Problem types are served by hedui itself (`GET /problems/{slug}`), so they resolve
wherever the service runs, intranets included."""

PROBLEM_TYPES: dict[str, str] = {
    "internal": "The service failed to handle the request; the cause is in its log.",
    "unauthorized": "No bearer token, or one that is unknown, revoked or expired (`detail` "
    "says which). Create keys with `hedui apikey create`; `hedui apikey list` shows each key's "
    "expiry.",
    "forbidden": "The key's role may not do this, the region is outside the key's region, "
    "or separation of duties forbids it (whoever submitted a verification cannot decide it).",
    "not-found": "No such resource in the caller's region. Resources of other regions are "
    "reported exactly like absent ones.",
    "conflict": "The resource is not in a state that allows this.",
    "method-not-allowed": "The path exists, but not with this method: the `Allow` header "
    "lists the ones it takes (the API reference at /docs shows each).",
    "unavailable": "The service cannot reach its database right now (a restart or an outage). "
    "Nothing was changed by this request; try again after `Retry-After` seconds.",
    "overloaded": "This process runs as many verifications as it may at once "
    "(HEDUI_MAX_IN_FLIGHT_RUNS); nothing was stored. Try again after `Retry-After` seconds.",
    "rate-limited": "This API key has used its requests for the current minute "
    "(HEDUI_RATE_LIMIT_PER_MINUTE, per process); nothing was stored. The `RateLimit` and "
    "`RateLimit-Policy` headers say the quota; try again after `Retry-After` seconds.",
    "validation": "The request is malformed; `errors` lists each wrong field (`loc`) and why "
    "(`msg`). Nothing was stored.",
    "report-not-ready": "The verification has not completed yet; its report exists once it "
    "has. Poll the verification or use `Prefer: wait=N`.",
    "headers-too-large": "The request's line and headers took more than 64 KiB, or it had "
    "more than 100 header lines; the connection was closed. Send the data in the body.",
    "malformed-request": "The request was not well-formed HTTP/1.1: its request line, a "
    "header line or its chunked framing could not be read. Nothing was read of it and the "
    "connection was closed. Fix the client, or the proxy in front of it.",
    "decision-exists": "The verification already has its decision; decisions are never changed.",
    "already-on-the-roll": "A member of this household is on the roll of the same program "
    "already (active or under review): a person is paid once. With another household: stop "
    "that recipient first (`POST /v1/recipients/{id}/stop`), or return this one. A household "
    "on the roll is re-checked, not verified anew: under review, it is decided on its "
    "re-check's verification (`review_verification_id` of its warnings); a re-check returned "
    "is started again by the next re-check pass, and its new verification is the one to "
    "decide. Return this one.",
    "near-relative-registered-since": "A member of the household was registered in the "
    "near-relative registry (近亲属备案) after the report was made, and the report does not show "
    "it: the approver must see it, so the approval is refused. Return or reject the "
    "verification, and verify the household again (a re-check: return it; the next pass starts "
    "it again) for a report that shows the registration.",
    "recipient-left": "The recipient this re-check is about has left the roll (stopped, or "
    "rejected) since the re-check began: approving it would record a benefit the roll does not "
    "pay. Reject or return it; a household applying again is a new verification. (Said too of "
    "an approval of a changed household, `recipient_id`, whose recipient is off the roll.)",
    "recheck-superseded": "A later re-check of the same recipient has its report since this one "
    "(one that failed, or waits for a new authorization, has none and supersedes nothing), or "
    "the recipient's household changed since it began (an approval with `recipient_id`): an "
    "approval or rejection of the older report would overwrite what the newer one decides. "
    "Decide the newer one; this one can only be returned.",
    "stale-change": "An approval of a changed household (`recipient_id`) whose verification "
    "was made before the household on the roll was last approved or re-checked: its facts "
    "are older than the roll's, and approving it would undo what was decided or found since. "
    "Verify the household anew and decide that verification.",
    "too-large": "The request body is larger than this service accepts (HEDUI_MAX_BODY_BYTES, "
    "1 MiB unless configured); nothing of it was read. Send less, or ask the operator.",
    "body-timeout": "The request body did not arrive in time (HEDUI_BODY_TIMEOUT_S, 10 s unless "
    "configured, plus a second for every HEDUI_BODY_MIN_RATE bytes received); nothing was "
    "stored and the connection was closed. Send the body at once, or at a steady pace.",
    "batch-closed": "The batch is closed or cancelled: it takes no more households.",
    "batch-too-large": "The batch would hold more households than this service accepts in one "
    "batch (HEDUI_MAX_BATCH_HOUSEHOLDS, 100,000 unless configured). The lines before the limit "
    "were stored (the batch's `lines_received`); none after it. Start another batch.",
    "unsupported-media-type": "The body's Content-Type is not one this operation reads; "
    "batches take `application/json` or `application/x-ndjson`.",
    "near-relative-revoked": "The near-relative registration was already revoked.",
    "api-key-revoked": "The API key was already revoked; a revocation is never undone.",
    "records-purged": "The raw partner records behind this report were purged under the "
    "retention policy (HEDUI_RETENTION_RAW_DAYS); the stored report and its decisions stand, "
    "but it cannot be re-scored.",
    "verification-withdrawn": "The verification was withdrawn (the household withdrew its "
    "consent, or the caseworker the application): it is withdrawn once, cannot be decided or "
    "re-scored, and its raw partner records are gone. A report made before the withdrawal "
    "stays readable as it was stored.",
    "near-relative-duplicate": "The same relative is already registered, and not revoked, for "
    "the same staff member and region; `detail` names that registration.",
}


class HeduiError(Exception):
    """An error a caller can act on; carries its HTTP status and a stable problem type."""

    status: int = 500
    title: str = "Internal error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[ProblemError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers

    def problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        )


class Unauthorized(HeduiError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(
        self, detail: str = "An API key is required: send Authorization: Bearer <token>"
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HeduiError):
    status, title, slug = 403, "Forbidden", "forbidden"


class OutsideRegion(Forbidden):
    """A body naming a region the caller's key does not cover."""

    def __init__(self) -> None:
        super().__init__(
            "region_code is outside the region of this API key",
            errors=[ProblemError(loc=["body", "region_code"], msg="outside the key's region")],
        )


class NotFound(HeduiError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(HeduiError):
    status, title, slug = 409, "Conflict", "conflict"


class InvalidRequest(HeduiError):
    status, title, slug = 422, "Invalid request", "validation"

    @classmethod
    def at(cls, loc: list[str | int], msg: str) -> "InvalidRequest":
        """The request is wrong at `loc`: `detail` says where, then why, as a validation
        error's does."""
        error = ProblemError(loc=loc, msg=msg)
        return cls(summary([error]), errors=[error])


class VerificationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such verification")


class ReportNotReady(Conflict):
    slug = "report-not-ready"

    RETRY_AFTER_S = 1
    """While its verification runs: partners answer within seconds, and `Prefer: wait` on
    the submission saves the polling altogether."""

    def __init__(self, status: str) -> None:
        if status in ("failed", "cancelled"):
            # It never will: asking again does not help, so no Retry-After.
            super().__init__(f"The verification is {status}; it has no report")
            return
        super().__init__(
            f"The verification is {status}; its report exists once it is completed",
            headers={"Retry-After": str(self.RETRY_AFTER_S)},
        )


class DecisionExists(Conflict):
    slug = "decision-exists"

    def __init__(self) -> None:
        super().__init__("This verification already has a decision")


class NearRelativeRegisteredSince(Conflict):
    slug = "near-relative-registered-since"

    def __init__(self, member: str, more: int) -> None:
        others = f" (and {more} more)" if more else ""
        super().__init__(
            f"Member {member}{others} was registered in the near-relative registry after this "
            "report was made, which does not show it: an approval must see it. Return or "
            "reject this verification; verify the household again for a report that shows "
            "it (a household on the roll: return its re-check, and the next pass starts it "
            "again)"
        )


class AlreadyOnTheRoll(Conflict):
    slug = "already-on-the-roll"

    def __init__(self, member: str, program: str, *, under_review: bool = False) -> None:
        if under_review:
            super().__init__(
                f"Member {member} is on the {program} roll already, in a household under "
                "review: a person is paid once, and a household on the roll is re-checked, "
                "not verified anew. The approver decides on its re-check's verification (the "
                "`review_verification_id` of its warnings); a re-check returned is started "
                "again by the next re-check pass (the recipient's `next_recheck_on`), and its "
                "new verification is the one to decide. Return this one"
            )
        else:
            super().__init__(
                f"Member {member} is on the {program} roll already, with another household: "
                "a person is paid once (a household on the roll whose members changed is "
                "approved with recipient_id, the recipient whose household it replaces)"
            )


class RecipientLeft(Conflict):
    slug = "recipient-left"

    def __init__(self, left_on: object, *, change: bool = False) -> None:
        if change:
            super().__init__(
                f"The recipient left the roll on {left_on}: there is no household on it to "
                "change (approve this verification without recipient_id, as a new "
                "application)"
            )
            return
        super().__init__(
            f"The recipient this re-check is about left the roll on {left_on}: an approval "
            "cannot put them back (submit a new verification for a new application); a "
            "rejection or a return is still recorded"
        )


class StaleChange(Conflict):
    slug = "stale-change"

    def __init__(self, settled_at: datetime | str) -> None:
        when = (
            settled_at.isoformat(timespec="seconds")
            if isinstance(settled_at, datetime)
            else settled_at
        )
        super().__init__(
            f"This verification was made before the household on the roll was last approved "
            f"or re-checked ({when}): its facts are older than the roll's, and approving "
            "it would undo what was decided or found since. Verify the household anew"
        )


class RecheckSuperseded(Conflict):
    slug = "recheck-superseded"

    def __init__(self, *, household_changed: bool = False) -> None:
        if household_changed:
            super().__init__(
                "The recipient's household changed after this re-check began (an approval "
                "with its members as they now are): that decision, not this one's, says "
                "what the roll pays (return this one)"
            )
            return
        super().__init__(
            "A later re-check of this recipient has its report: its decision, not this one's, "
            "says what the roll pays (return this one)"
        )


class VerificationWithdrawn(Conflict):
    slug = "verification-withdrawn"

    ALREADY = "The verification was withdrawn already"
    NOT_DECIDED = "The verification was withdrawn; it cannot be decided"
    NOT_RESCORED = (
        "The verification was withdrawn and its partner records purged; it cannot be "
        "re-scored (the report stored before the withdrawal stays readable)"
    )
    NO_REPORT = "The verification was withdrawn before it completed; it has no report"


class BatchNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such batch")


class BatchClosed(Conflict):
    slug = "batch-closed"

    def __init__(self, status: str) -> None:
        super().__init__(f"The batch is {status}; it takes no more households")


class BatchTooLarge(HeduiError):
    status, title, slug = 413, "Content too large", "batch-too-large"

    def __init__(
        self,
        limit: int,
        stored_through: int,
        *,
        batch_id: str | None = None,
        sent: int | None = None,
    ) -> None:
        self.limit, self.stored_through = limit, stored_through
        detail = (
            f"A batch holds at most {limit} lines (HEDUI_MAX_BATCH_HOUSEHOLDS); lines 1 to "
            f"{stored_through} are stored, none after"
            if sent is None
            else f"A batch holds at most {limit} lines (HEDUI_MAX_BATCH_HOUSEHOLDS) and this "
            f"JSON body holds {sent}: nothing of it is stored"
        )
        if batch_id is None:
            super().__init__(detail)
            return
        super().__init__(
            f"{detail}, in batch {batch_id}: close it (POST /v1/batches/{batch_id}/close) to "
            "have it complete, and send the rest as another batch",
            headers={"Location": f"/v1/batches/{batch_id}"},
        )


class UnsupportedMediaType(HeduiError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class ServiceUnavailable(HeduiError):
    status, title, slug = 503, "Service unavailable", "unavailable"
    RETRY_AFTER_S = 5

    def __init__(self, detail: str = "The database is unavailable; try again shortly") -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)})


class Overloaded(HeduiError):
    status, title, slug = 503, "Service overloaded", "overloaded"
    RETRY_AFTER_S = 2

    RUNNING = "Too many verifications are running; try again shortly"
    QUEUED = "Too many verifications are waiting to run; try again shortly"

    def __init__(self, detail: str = RUNNING) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)})


class RateLimited(HeduiError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__(
            "This API key's request quota for the current minute is used up",
            headers={"Retry-After": str(retry_after_s), **headers},
        )


def check_idempotency_key(key: str | None) -> None:
    """An `Idempotency-Key` is stored and logged as sent: not blank, and no ID number (the
    request guard has refused a second one: a retry carrying either would decide
    differently)."""
    if key is None:
        return
    if not key.strip():
        raise InvalidRequest.at(["header", "Idempotency-Key"], "must not be blank")
    if not (key.isascii() and key.isprintable()):
        # A header's bytes beyond ASCII arrive as Latin-1 guesses: stored and compared as
        # such, a retry from another client library could send the same key differently.
        raise InvalidRequest.at(["header", "Idempotency-Key"], "must be printable ASCII")
    if hides_id_number(key):
        raise InvalidRequest.at(
            ["header", "Idempotency-Key"], "must not contain an ID number or any run of 18 digits"
        )
