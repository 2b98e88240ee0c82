"""Errors of the warnings feature, each with a localised message (``alerts_core`` catalogue)."""

from __future__ import annotations

from quickresponse.errors import InvalidInput, QuickResponseError, StaleAction


class AlertError(QuickResponseError):
    """Base of the warnings feature's errors."""

    message_key = "alerts.error.generic"


class AlertNotFound(AlertError, StaleAction):
    """No alert has that id (or a button refers to one that is gone)."""

    message_key = "alerts.error.not_found"


class AlertStateConflict(AlertError):
    """The alert is not in a state that allows this (e.g. cancelling one already sent).

    ``params``: ``alert_id``, ``state``.
    """

    message_key = "alerts.error.wrong_state"


class ApprovalBySameAdmin(AlertError):
    """The admin who wrote the alert tried to approve it; a second admin must."""

    message_key = "alerts.error.same_admin"


class UnknownDistrict(AlertError, InvalidInput):
    """A district id is not a district of the configured city. ``params``: ``district``."""

    message_key = "alerts.error.unknown_district"


class UnknownHazard(AlertError, InvalidInput):
    message_key = "alerts.error.unknown_hazard"


class UnknownLevel(AlertError, InvalidInput):
    message_key = "alerts.error.unknown_level"


class AlertTextInvalid(AlertError, InvalidInput):
    """A message text is empty or too long. ``params``: ``lang``, ``limit``."""

    message_key = "alerts.error.text_invalid"


class AlertTimeInvalid(AlertError, InvalidInput):
    """Send time or 'in force until' is impossible (until before send, send far in the past)."""

    message_key = "alerts.error.time_invalid"


class NoTargetDistricts(AlertError, InvalidInput):
    message_key = "alerts.error.no_districts"


class LevelNotIssued(AlertError, InvalidInput):
    """The hazard has no signal at that level (hail is only orange and red).

    ``params``: ``hazard``, ``levels`` (names in the message language are filled in by the
    renderer from ``hazard_id`` and ``level_ids``).
    """

    message_key = "alerts.error.level_not_issued"
