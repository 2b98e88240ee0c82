"""Errors of the tickets feature, each named for the condition with a localised message.

The catalogue texts live in ``quickresponse/locales/tickets_core.<zh|en>.yaml``; ``params`` carry
the values the message shows (``ticket_id``, ``claimed_by_name``, ``limit`` ...).
"""

from __future__ import annotations

from quickresponse.errors import InvalidInput, NotPermitted, QuickResponseError, StaleAction


class TicketNotFound(StaleAction):
    """No ticket has that number."""

    message_key = "tickets.error.not_found"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"no ticket #{ticket_id}", ticket_id=ticket_id)
        self.ticket_id = ticket_id


class TicketAlreadyClaimed(QuickResponseError):
    """Someone else claimed the ticket first (two staff pressed Claim at once)."""

    message_key = "tickets.error.already_claimed"

    def __init__(self, ticket_id: int, claimed_by: int, claimed_by_name: str) -> None:
        super().__init__(
            f"ticket #{ticket_id} is already claimed by {claimed_by}",
            ticket_id=ticket_id, claimed_by=claimed_by, claimed_by_name=claimed_by_name,
        )
        self.ticket_id = ticket_id
        self.claimed_by = claimed_by
        self.claimed_by_name = claimed_by_name


class NotDistrictStaff(NotPermitted):
    """The user is neither registered staff of the ticket's district nor an admin."""

    message_key = "tickets.error.not_district_staff"

    def __init__(self, user_id: int, district_id: str, district_name: str = "") -> None:
        super().__init__(
            f"user {user_id} is not staff of district {district_id}",
            district_id=district_id, district_name=district_name or district_id,
        )
        self.user_id = user_id
        self.district_id = district_id


class NotAdmin(NotPermitted):
    """Only admins (settings.admin_ids) may do this: manage staff, link groups, see stats."""

    message_key = "tickets.error.not_admin"


class NotTicketOwner(NotPermitted):
    """A resident tried to change or rate a ticket that someone else filed."""

    message_key = "tickets.error.not_owner"


class TicketClosed(QuickResponseError):
    """The ticket is finished (closed, rejected, duplicate or withdrawn) and cannot change."""

    message_key = "tickets.error.closed"

    def __init__(self, ticket_id: int, state: str) -> None:
        super().__init__(f"ticket #{ticket_id} is {state}", ticket_id=ticket_id, state=state)
        self.ticket_id = ticket_id
        self.state = state


class InvalidTransition(QuickResponseError):
    """The action does not apply to the ticket in its current state (e.g. resolve a new one)."""

    message_key = "tickets.error.invalid_transition"

    def __init__(self, ticket_id: int, state: str, action: str) -> None:
        super().__init__(
            f"cannot {action} ticket #{ticket_id} in state {state}",
            ticket_id=ticket_id, state=state, action=action,
        )
        self.ticket_id = ticket_id
        self.state = state
        self.action = action


class AlreadyRated(QuickResponseError):
    """The resident already gave their verdict on this resolution."""

    message_key = "tickets.error.already_rated"


class UnknownDistrict(InvalidInput):
    """No district of the configured city has that id or name."""

    message_key = "tickets.error.unknown_district"

    def __init__(self, value: str) -> None:
        super().__init__(f"unknown district {value!r}", value=value)
        self.value = value


class UnknownCategory(InvalidInput):
    """No ticket category has that id."""

    message_key = "tickets.error.unknown_category"

    def __init__(self, value: str) -> None:
        super().__init__(f"unknown category {value!r}", value=value)
        self.value = value


class TextTooLong(InvalidInput):
    """A description, note or reason is longer than allowed."""

    message_key = "tickets.error.text_too_long"

    def __init__(self, limit: int, length: int) -> None:
        super().__init__(f"{length} characters, limit {limit}", limit=limit, length=length)
        self.limit = limit
        self.length = length


class TextRequired(InvalidInput):
    """A description, note or reason is empty after cleaning."""

    message_key = "tickets.error.text_required"


class TooManyPhotos(InvalidInput):
    """A ticket already holds the maximum number of photos."""

    message_key = "tickets.error.too_many_photos"

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} photos", limit=limit)
        self.limit = limit


class InvalidLocation(InvalidInput):
    """Latitude/longitude out of range or not a number."""

    message_key = "tickets.error.invalid_location"


class InvalidDuplicateTarget(InvalidInput):
    """A ticket cannot be a duplicate of itself, of a missing ticket, or of a duplicate chain."""

    message_key = "tickets.error.invalid_duplicate"


class StaffNotFound(InvalidInput):
    """The user is not registered as staff (of that district)."""

    message_key = "tickets.error.staff_not_found"


class NotGroupChat(InvalidInput):
    """A district can only be linked to a group chat (negative chat id)."""

    message_key = "tickets.error.not_group_chat"


class NoDispatchDesk(QuickResponseError):
    """An urgent call cannot be filed without asking where: nothing tells its district and the
    city has no dispatch desk. The front end falls back to the guided report."""

    message_key = "tickets.error.no_dispatch"

    def __init__(self) -> None:
        super().__init__("no district known and no dispatch desk")
