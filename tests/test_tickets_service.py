"""The ticket service: filing, the state machine, permissions, notifications, the outbox.

Runs on SQLite and PostgreSQL (``db_url`` is parametrised). The service is built directly on the
migrated database; the wiring into ``Services`` is covered by the SLA restart tests.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from quickresponse.db import Database
from quickresponse.districts import City, load_city
from quickresponse.errors import InvalidInput
from quickresponse.tickets.errors import (
    AlreadyRated,
    InvalidDuplicateTarget,
    InvalidLocation,
    InvalidTransition,
    NotAdmin,
    NotDistrictStaff,
    NotGroupChat,
    NotTicketOwner,
    StaffNotFound,
    TextRequired,
    TextTooLong,
    TicketAlreadyClaimed,
    TicketClosed,
    TicketNotFound,
    TooManyPhotos,
    UnknownCategory,
    UnknownDistrict,
)
from quickresponse.tickets.service import (
    MAX_DESCRIPTION,
    NewTicket,
    TicketService,
    parse_ticket_number,
)
from tests.conftest import ADMIN_ID

CHAOYANG, HAIDIAN = "110105", "110108"
RESIDENT, NEIGHBOUR, STRANGER = 1001, 1002, 1003
STAFF, OTHER_STAFF, HAIDIAN_STAFF = 501, 502, 601
CHAOYANG_GROUP, HAIDIAN_GROUP = -100105, -100108


def report(**overrides) -> NewTicket:
    values = dict(
        resident_id=RESIDENT, lang="en", category="waterlogging",
        description="Knee-deep water at the Wangjing underpass", district_id=CHAOYANG,
        routing_method="location", latitude=39.9960, longitude=116.4700,
    )
    values.update(overrides)
    return NewTicket(**values)


@pytest.fixture(scope="module")
def city() -> City:
    return load_city("beijing")


@pytest.fixture
async def db(db_url):
    database = Database(db_url)
    yield database
    await database.close()


def make_service(db: Database, clock, city: City) -> TicketService:
    return TicketService(db, clock, city, admin_ids=frozenset({ADMIN_ID}), default_lang="zh")


@pytest.fixture
async def bare(db, clock, city) -> TicketService:
    """The service with no staff and no groups."""
    return make_service(db, clock, city)


@pytest.fixture
async def tickets(bare) -> TicketService:
    t = bare
    await t.add_staff(None, STAFF, CHAOYANG, display_name="Officer Wang")
    await t.add_staff(None, OTHER_STAFF, CHAOYANG, display_name="Officer Li")
    await t.add_staff(None, HAIDIAN_STAFF, HAIDIAN, display_name="Officer Zhao")
    await t.link_group(ADMIN_ID, CHAOYANG, CHAOYANG_GROUP)
    await t.link_group(ADMIN_ID, HAIDIAN, HAIDIAN_GROUP)
    return t


def sent(outcome, audience=None):
    return [(n.audience, n.recipient_id, n.kind, n.lang) for n in outcome.notifications
            if audience is None or n.audience == audience]


# -- filing ----------------------------------------------------------------------------------

async def test_filing_creates_a_new_ticket_with_deadlines_and_posts_it_to_the_district(
        tickets, clock):
    outcome = await tickets.file(report(photos=["photo-1", "photo-2"]))
    ticket = outcome.ticket
    assert ticket.state == "new" and ticket.number == f"#{ticket.id}"
    assert ticket.district_id == CHAOYANG and ticket.routing_method == "location"
    # Waterlogging is urgent in Beijing's defaults: claim within 30 min, answer within 2 h.
    assert ticket.claim_due == clock.now() + timedelta(minutes=30)
    assert ticket.resolve_due == clock.now() + timedelta(hours=2)
    assert ticket.photos == ("photo-1", "photo-2")
    assert sent(outcome) == [("district", CHAOYANG_GROUP, "new", "zh")]
    assert [(e.action, e.from_state, e.to_state, e.actor_id) for e in ticket.events] == [
        ("filed", None, "new", RESIDENT)]


async def test_a_general_call_gets_seven_days_unless_it_is_urgent(tickets, clock):
    general = (await tickets.file(report(category="other"))).ticket
    assert general.resolve_due - general.created_at == timedelta(days=7)
    urgent = (await tickets.file(report(category="other", urgent=True))).ticket
    assert urgent.resolve_due - urgent.created_at == timedelta(hours=2)
    assert urgent.urgent


async def test_a_district_without_a_group_sends_new_tickets_to_the_admins(bare):
    outcome = await bare.file(report())
    assert sent(outcome) == [("admins", ADMIN_ID, "new", "zh")]
    assert outcome.notifications[0].params["no_group"] is True


@pytest.mark.parametrize(("change", "error"), [
    (dict(description="x" * (MAX_DESCRIPTION + 1)), TextTooLong),
    (dict(description="  \n\t "), TextRequired),
    (dict(description="\x00\x07"), TextRequired),
    (dict(category="volcano"), UnknownCategory),
    (dict(district_id="999999"), UnknownDistrict),
    (dict(latitude=39.9, longitude=None), InvalidLocation),
    (dict(latitude=float("nan"), longitude=116.4), InvalidLocation),
    (dict(latitude=95.0, longitude=116.4), InvalidLocation),
    (dict(photos=[f"p{i}" for i in range(11)]), TooManyPhotos),
    (dict(routing_method="telepathy"), InvalidInput),
])
async def test_bad_reports_are_refused_and_nothing_is_stored(tickets, change, error):
    with pytest.raises(error):
        await tickets.file(report(**change))
    assert await tickets.list_tickets() == []
    assert await tickets.pending_count() == 0


async def test_the_description_is_cleaned_of_control_and_direction_characters(tickets):
    ticket = (await tickets.file(report(description="  水漫\u202e进\x00地下室\u200b  "))).ticket
    assert ticket.description == "水漫进地下室"


async def test_contact_details_are_kept_only_with_consent(tickets):
    without = (await tickets.file(report(contact_name="Ms Chen", contact_phone="138"))).ticket
    assert (without.contact_name, without.contact_phone) == (None, None)
    with_consent = (await tickets.file(report(
        contact_consent=True, contact_name="Ms Chen", contact_phone="13800000000"))).ticket
    assert (with_consent.contact_name, with_consent.contact_phone) == ("Ms Chen", "13800000000")


async def test_the_same_submission_sent_twice_files_one_ticket(tickets):
    first = await tickets.file(report(client_ref="chat1-msg42"))
    again = await tickets.file(report(client_ref="chat1-msg42"))
    assert again.ticket.id == first.ticket.id
    assert again.notifications == ()
    assert len(await tickets.list_tickets()) == 1
    assert await tickets.pending_count() == 1


# -- claiming and permissions ----------------------------------------------------------------

async def test_staff_claim_and_the_resident_is_told_in_their_language(tickets, clock):
    ticket = (await tickets.file(report(lang="en"))).ticket
    clock.advance(minutes=10)
    outcome = await tickets.claim(ticket.id, STAFF)
    assert outcome.ticket.state == "claimed"
    assert outcome.ticket.claimed_by == STAFF
    assert outcome.ticket.claimed_by_name == "Officer Wang"
    assert outcome.ticket.claimed_at == clock.now()
    assert sent(outcome) == [("resident", RESIDENT, "claimed", "en")]
    assert outcome.notifications[0].params == {"by": "Officer Wang"}


async def test_a_second_claim_is_told_who_has_the_ticket(tickets):
    ticket = (await tickets.file(report())).ticket
    await tickets.claim(ticket.id, STAFF)
    with pytest.raises(TicketAlreadyClaimed) as caught:
        await tickets.claim(ticket.id, OTHER_STAFF)
    assert caught.value.claimed_by == STAFF
    assert caught.value.params["claimed_by_name"] == "Officer Wang"
    assert (await tickets.view(ticket.id)).claimed_by == STAFF


@pytest.mark.parametrize("actor", [STRANGER, HAIDIAN_STAFF, RESIDENT])
async def test_only_staff_of_the_district_or_admins_can_act(tickets, actor):
    ticket = (await tickets.file(report())).ticket
    for action in (
        tickets.claim(ticket.id, actor),
        tickets.reject(ticket.id, actor, "not ours"),
        tickets.transfer(ticket.id, actor, HAIDIAN, "wrong district"),
        tickets.mark_duplicate(ticket.id, actor, ticket.id + 1),
        tickets.queue(CHAOYANG, actor),
    ):
        with pytest.raises(NotDistrictStaff):
            await action
    assert (await tickets.view(ticket.id)).state == "new"
    assert (await tickets.view(ticket.id)).events[-1].action == "filed"


async def test_an_admin_can_act_on_any_district(tickets):
    ticket = (await tickets.file(report())).ticket
    outcome = await tickets.claim(ticket.id, ADMIN_ID, actor_name="Duty admin")
    assert outcome.ticket.claimed_by_name == "Duty admin"
    assert outcome.ticket.events[-1].actor_role == "admin"


async def test_removed_staff_lose_their_rights(tickets):
    ticket = (await tickets.file(report())).ticket
    assert await tickets.remove_staff(ADMIN_ID, STAFF, CHAOYANG) == 1
    with pytest.raises(NotDistrictStaff):
        await tickets.claim(ticket.id, STAFF)
    assert await tickets.can_act(STAFF, CHAOYANG) is False


async def test_unknown_tickets(tickets):
    with pytest.raises(TicketNotFound):
        await tickets.claim(424242, STAFF)
    with pytest.raises(TicketNotFound):
        await tickets.view(424242)


async def test_ten_staff_claiming_at_once_make_exactly_one_winner(bare, db_url, clock, city):
    """Each claimer has its own engine and connections: a real race in the database."""
    t = bare
    claimers = list(range(700, 710))
    for user in claimers:
        await t.add_staff(None, user, CHAOYANG, display_name=f"Staff {user}")
    ticket = (await t.file(report())).ticket
    databases = [Database(db_url) for _ in claimers]
    racers = [make_service(database, clock, city) for database in databases]
    try:
        results = await asyncio.gather(
            *(r.claim(ticket.id, user) for r, user in zip(racers, claimers, strict=True)),
            return_exceptions=True)
    finally:
        for db in databases:
            await db.close()
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, TicketAlreadyClaimed)]
    assert len(winners) == 1, results
    assert len(losers) == len(claimers) - 1, results
    winner = winners[0].ticket.claimed_by
    assert all(loser.claimed_by == winner for loser in losers)
    final = await t.view(ticket.id)
    assert final.claimed_by == winner
    assert [e.action for e in final.events].count("claimed") == 1
    # Exactly one "claimed" message went to the resident.
    pending = await t.take_notifications()
    assert [n.kind for n in pending if n.audience == "resident"] == ["claimed"]


# -- the life of a ticket --------------------------------------------------------------------

async def test_note_resolve_and_a_satisfied_resident_close_the_ticket(tickets, clock):
    ticket = (await tickets.file(report(lang="zh"))).ticket
    await tickets.claim(ticket.id, STAFF)
    note = await tickets.add_note(ticket.id, STAFF, "抽水车已出发")
    assert sent(note) == [("resident", RESIDENT, "note", "zh")]
    assert note.notifications[0].params == {"note": "抽水车已出发"}
    clock.advance(minutes=50)
    resolved = await tickets.resolve(ticket.id, OTHER_STAFF, "积水已排净")
    assert resolved.ticket.state == "resolved" and resolved.ticket.resolved_at == clock.now()
    assert resolved.ticket.resolution_note == "积水已排净"
    assert sent(resolved) == [("resident", RESIDENT, "resolved", "zh")]
    rated = await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="satisfied")
    assert rated.ticket.state == "closed"
    assert (rated.ticket.solved, rated.ticket.satisfaction) == (True, "satisfied")
    assert sent(rated) == [("district", CHAOYANG_GROUP, "rated", "zh")]
    history = [(e.action, e.from_state, e.to_state) for e in rated.ticket.events]
    assert history == [
        ("filed", None, "new"), ("claimed", "new", "claimed"), ("note", "claimed", "claimed"),
        ("resolved", "claimed", "resolved"), ("rated", "resolved", "closed"),
    ]
    assert [e.actor_id for e in rated.ticket.events] == [RESIDENT, STAFF, STAFF, OTHER_STAFF,
                                                         RESIDENT]


async def test_not_solved_reopens_with_a_fresh_deadline(tickets, clock):
    ticket = (await tickets.file(report())).ticket
    await tickets.claim(ticket.id, STAFF)
    await tickets.resolve(ticket.id, STAFF, "Drain cleared")
    clock.advance(hours=3)
    reopened = await tickets.rate(ticket.id, RESIDENT, solved=False,
                                  satisfaction="not_satisfied")
    assert reopened.ticket.state == "reopened"
    assert reopened.ticket.resolve_due == clock.now() + timedelta(hours=2)
    assert reopened.ticket.claimed_by == STAFF
    assert sent(reopened) == [("district", CHAOYANG_GROUP, "reopened", "zh")]
    with pytest.raises(AlreadyRated):
        await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="satisfied")
    await tickets.resolve(ticket.id, STAFF, "Pumped out for good")
    closed = await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="basic")
    assert (closed.ticket.state, closed.ticket.satisfaction) == ("closed", "basic")
    with pytest.raises(AlreadyRated):
        await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="satisfied")


async def test_a_solved_verdict_needs_a_satisfaction_and_only_the_resident_rates(tickets):
    ticket = (await tickets.file(report())).ticket
    await tickets.claim(ticket.id, STAFF)
    with pytest.raises(InvalidTransition):
        await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="satisfied")
    await tickets.resolve(ticket.id, STAFF, "done")
    with pytest.raises(InvalidInput):
        await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction=None)
    with pytest.raises(InvalidInput):
        await tickets.rate(ticket.id, RESIDENT, solved=True, satisfaction="ecstatic")
    with pytest.raises(NotTicketOwner):
        await tickets.rate(ticket.id, STRANGER, solved=True, satisfaction="satisfied")
    assert (await tickets.view(ticket.id)).state == "resolved"


async def test_wrong_state_actions_are_refused(tickets):
    ticket = (await tickets.file(report())).ticket
    with pytest.raises(InvalidTransition):
        await tickets.resolve(ticket.id, STAFF, "nothing done yet")
    with pytest.raises(InvalidTransition):
        await tickets.add_note(ticket.id, STAFF, "unclaimed")
    await tickets.reject(ticket.id, STAFF, "Private property: call the building manager")
    for action in (tickets.claim(ticket.id, STAFF), tickets.resolve(ticket.id, STAFF, "x"),
                   tickets.withdraw(ticket.id, RESIDENT),
                   tickets.add_info(ticket.id, RESIDENT, text="more")):
        with pytest.raises(TicketClosed):
            await action


async def test_transfer_sends_the_ticket_to_the_other_district_as_new(tickets, clock):
    ticket = (await tickets.file(report(lang="en"))).ticket
    await tickets.claim(ticket.id, STAFF)
    clock.advance(hours=1)
    moved = await tickets.transfer(ticket.id, STAFF, HAIDIAN, "The underpass is in Haidian")
    t = moved.ticket
    assert (t.state, t.district_id, t.claimed_by) == ("new", HAIDIAN, None)
    assert t.claim_due == clock.now() + timedelta(minutes=30)
    assert t.resolve_due == clock.now() + timedelta(hours=2)
    assert t.reason == "The underpass is in Haidian"
    assert sorted(sent(moved)) == [("district", HAIDIAN_GROUP, "new", "zh"),
                                   ("resident", RESIDENT, "transferred", "en")]
    posted = next(n for n in moved.notifications if n.audience == "district")
    assert posted.params["transferred_from"] == CHAOYANG
    assert t.events[-1].action == "transferred" and t.events[-1].district_id == HAIDIAN
    # Chaoyang staff no longer act on it; Haidian staff do.
    with pytest.raises(NotDistrictStaff):
        await tickets.claim(ticket.id, STAFF)
    assert (await tickets.claim(ticket.id, HAIDIAN_STAFF)).ticket.claimed_by == HAIDIAN_STAFF
    with pytest.raises(InvalidInput):
        await tickets.transfer(ticket.id, HAIDIAN_STAFF, HAIDIAN, "same")
    with pytest.raises(UnknownDistrict):
        await tickets.transfer(ticket.id, HAIDIAN_STAFF, "000000", "nowhere")


async def test_reject_tells_the_resident_why(tickets):
    ticket = (await tickets.file(report(lang="zh"))).ticket
    outcome = await tickets.reject(ticket.id, STAFF, "属于物业管理范围")
    assert outcome.ticket.state == "rejected"
    assert sent(outcome) == [("resident", RESIDENT, "rejected", "zh")]
    assert outcome.notifications[0].params == {"reason": "属于物业管理范围"}
    with pytest.raises(TextRequired):
        await tickets.reject((await tickets.file(report())).ticket.id, STAFF, "   ")


async def test_a_duplicate_closes_and_its_resident_follows_the_original(tickets):
    original = (await tickets.file(report())).ticket
    copy = (await tickets.file(report(resident_id=NEIGHBOUR, lang="zh"))).ticket
    outcome = await tickets.mark_duplicate(copy.id, STAFF, original.id)
    assert outcome.ticket.state == "duplicate" and outcome.ticket.duplicate_of == original.id
    assert sent(outcome) == [("resident", NEIGHBOUR, "duplicate", "zh")]
    assert outcome.notifications[0].params["of_ticket"] == original.id
    # The neighbour now hears about the original, in Chinese; the original resident in English.
    claimed = await tickets.claim(original.id, STAFF)
    assert sorted(sent(claimed)) == [("follower", NEIGHBOUR, "claimed", "zh"),
                                     ("resident", RESIDENT, "claimed", "en")]
    assert original.id in [s.id for s in await tickets.my_tickets(NEIGHBOUR)]


async def test_invalid_duplicate_targets(tickets):
    ticket = (await tickets.file(report())).ticket
    other = (await tickets.file(report())).ticket
    await tickets.withdraw(other.id, RESIDENT)
    for target in (ticket.id, 999999, other.id):
        with pytest.raises(InvalidDuplicateTarget):
            await tickets.mark_duplicate(ticket.id, STAFF, target)


# -- residents ------------------------------------------------------------------------------

async def test_the_resident_adds_information_and_a_photo(tickets):
    ticket = (await tickets.file(report())).ticket
    outcome = await tickets.add_info(ticket.id, RESIDENT, text="Now waist-deep",
                                     photo_file_id="photo-9")
    assert outcome.ticket.photos == ("photo-9",)
    assert [e.action for e in outcome.ticket.events][-2:] == ["photo_added", "info_added"]
    assert sent(outcome) == [("district", CHAOYANG_GROUP, "info_added", "zh")]
    assert outcome.notifications[0].params["text"] == "Now waist-deep"
    with pytest.raises(NotTicketOwner):
        await tickets.add_info(ticket.id, STRANGER, text="spam")
    with pytest.raises(TextRequired):
        await tickets.add_info(ticket.id, RESIDENT)


async def test_photos_are_limited(tickets):
    ticket = (await tickets.file(report(photos=[f"p{i}" for i in range(10)]))).ticket
    with pytest.raises(TooManyPhotos):
        await tickets.add_info(ticket.id, RESIDENT, photo_file_id="one-more")


async def test_the_resident_withdraws_and_the_district_is_told(tickets):
    ticket = (await tickets.file(report())).ticket
    with pytest.raises(NotTicketOwner):
        await tickets.withdraw(ticket.id, STRANGER)
    outcome = await tickets.withdraw(ticket.id, RESIDENT, "The water has gone")
    assert outcome.ticket.state == "withdrawn"
    assert sent(outcome) == [("district", CHAOYANG_GROUP, "withdrawn", "zh")]


async def test_open_tickets_nearby_are_offered_before_filing_a_duplicate(tickets):
    here = (await tickets.file(report(latitude=39.99600, longitude=116.47000))).ticket
    await tickets.file(report(latitude=39.99800, longitude=116.47000))  # ~220 m away
    await tickets.file(report(category="manhole", latitude=39.99601, longitude=116.47001))
    done = (await tickets.file(report(latitude=39.99602, longitude=116.47000))).ticket
    await tickets.withdraw(done.id, RESIDENT)
    nearby = await tickets.nearby_open("waterlogging", 39.99630, 116.47000)  # ~33 m north
    assert [n.id for n in nearby] == [here.id]
    assert 25 < nearby[0].distance_m < 40


async def test_following_a_ticket(tickets):
    ticket = (await tickets.file(report())).ticket
    await tickets.follow(ticket.id, NEIGHBOUR, "zh")
    await tickets.follow(ticket.id, NEIGHBOUR, "zh")  # twice is harmless
    view = await tickets.view(ticket.id)
    assert view.followers == 1
    resolved_for = sent(await tickets.claim(ticket.id, STAFF))
    assert ("follower", NEIGHBOUR, "claimed", "zh") in resolved_for
    await tickets.reject(ticket.id, STAFF, "closed")
    with pytest.raises(TicketClosed):
        await tickets.follow(ticket.id, STRANGER, "en")


async def test_my_tickets_lists_filed_and_followed_newest_first(tickets):
    first = (await tickets.file(report())).ticket
    second = (await tickets.file(report(category="other"))).ticket
    other = (await tickets.file(report(resident_id=NEIGHBOUR))).ticket
    await tickets.follow(other.id, RESIDENT, "en")
    mine = await tickets.my_tickets(RESIDENT)
    assert [s.id for s in mine] == [other.id, second.id, first.id]
    assert await tickets.my_tickets(STRANGER) == []


async def test_who_can_see_a_ticket_and_its_contact_details(tickets):
    ticket = (await tickets.file(report(contact_consent=True, contact_name="Ms Chen",
                                        contact_phone="13800000000"))).ticket
    await tickets.follow(ticket.id, NEIGHBOUR, "zh")
    assert (await tickets.show(ticket.id, RESIDENT)).contact_phone == "13800000000"
    assert (await tickets.show(ticket.id, STAFF)).contact_phone == "13800000000"
    assert (await tickets.show(ticket.id, ADMIN_ID)).contact_phone == "13800000000"
    follower_view = await tickets.show(ticket.id, NEIGHBOUR)
    assert (follower_view.contact_name, follower_view.contact_phone) == (None, None)
    with pytest.raises(NotDistrictStaff):
        await tickets.show(ticket.id, STRANGER)
    with pytest.raises(NotDistrictStaff):
        await tickets.show(ticket.id, HAIDIAN_STAFF)


# -- staff, groups, queue --------------------------------------------------------------------

async def test_staff_management_is_for_admins(tickets):
    with pytest.raises(NotAdmin):
        await tickets.add_staff(STAFF, 777, CHAOYANG)
    with pytest.raises(NotAdmin):
        await tickets.remove_staff(STAFF, OTHER_STAFF)
    with pytest.raises(UnknownDistrict):
        await tickets.add_staff(ADMIN_ID, 777, "nowhere")
    added = await tickets.add_staff(ADMIN_ID, 777, HAIDIAN, display_name="New hire")
    assert (added.user_id, added.district_id, added.added_by) == (777, HAIDIAN, ADMIN_ID)
    assert [(s.user_id, s.district_id) for s in await tickets.list_staff(HAIDIAN)] == [
        (HAIDIAN_STAFF, HAIDIAN), (777, HAIDIAN)]
    assert await tickets.staff_districts(777) == [HAIDIAN]
    assert await tickets.remove_staff(ADMIN_ID, 777) == 1
    with pytest.raises(StaffNotFound):
        await tickets.remove_staff(ADMIN_ID, 777)
    # Re-adding re-activates the same row.
    await tickets.add_staff(None, 777, HAIDIAN)
    assert await tickets.staff_districts(777) == [HAIDIAN]


async def test_district_groups_are_linked_by_admins(tickets):
    assert await tickets.district_group(CHAOYANG) == CHAOYANG_GROUP
    assert await tickets.district_of_group(CHAOYANG_GROUP) == CHAOYANG
    with pytest.raises(NotAdmin):
        await tickets.link_group(STAFF, CHAOYANG, -1)
    with pytest.raises(NotGroupChat):
        await tickets.link_group(ADMIN_ID, CHAOYANG, 12345)
    # A group serves one district: linking it to another moves it.
    await tickets.link_group(ADMIN_ID, HAIDIAN, CHAOYANG_GROUP)
    assert await tickets.district_of_group(CHAOYANG_GROUP) == HAIDIAN
    assert await tickets.district_group(CHAOYANG) is None
    await tickets.unlink_group(ADMIN_ID, HAIDIAN)
    assert await tickets.district_of_group(CHAOYANG_GROUP) is None


async def test_the_queue_lists_open_tickets_by_deadline(tickets, clock):
    general = (await tickets.file(report(category="other"))).ticket  # claim within 24 h
    clock.advance(minutes=5)
    urgent = (await tickets.file(report())).ticket  # claim within 30 min
    claimed = (await tickets.file(report(category="outage"))).ticket
    await tickets.claim(claimed.id, STAFF)  # resolve within 24 h of filing
    closed = (await tickets.file(report())).ticket
    await tickets.reject(closed.id, STAFF, "not ours")
    await tickets.file(report(district_id=HAIDIAN))
    queue = await tickets.queue(CHAOYANG, STAFF)
    assert [s.id for s in queue] == [urgent.id, general.id, claimed.id]
    clock.advance(hours=1)
    assert [s.overdue for s in await tickets.queue(CHAOYANG, STAFF)] == [True, False, False]


# -- the outbox ------------------------------------------------------------------------------

async def test_the_outbox_delivers_each_notification_until_it_is_sent(tickets, clock):
    ticket = (await tickets.file(report())).ticket
    await tickets.claim(ticket.id, STAFF)
    taken = await tickets.take_notifications()
    assert [n.kind for n in taken] == ["new", "claimed"]
    # Leased: a second drain does not take them again.
    assert await tickets.take_notifications() == []
    await tickets.mark_sent(taken[0].id)
    await tickets.mark_failed(taken[1].id, permanent=False, error="timeout")
    assert await tickets.take_notifications() == []
    clock.advance(minutes=1)
    retried = await tickets.take_notifications()
    assert [(n.id, n.attempts) for n in retried] == [(taken[1].id, 2)]
    await tickets.mark_failed(retried[0].id, permanent=True, error="Forbidden: bot was blocked")
    clock.advance(hours=2)
    assert await tickets.take_notifications() == []
    assert await tickets.pending_count() == 0


async def test_a_notification_whose_sender_died_is_delivered_after_the_lease(tickets, clock):
    await tickets.file(report())
    first = await tickets.take_notifications(lease_seconds=120)
    clock.advance(seconds=119)
    assert await tickets.take_notifications() == []
    clock.advance(seconds=2)
    assert [n.id for n in await tickets.take_notifications()] == [first[0].id]


async def test_two_drains_at_once_never_take_the_same_notification(tickets, db_url, clock,
                                                                  city):
    for _ in range(15):
        await tickets.file(report())
    databases = [Database(db_url) for _ in range(3)]
    drains = [make_service(database, clock, city) for database in databases]
    try:
        batches = await asyncio.gather(*(d.take_notifications(limit=15) for d in drains))
    finally:
        for database in databases:
            await database.close()
    taken = [n.id for batch in batches for n in batch]
    assert len(taken) == len(set(taken)) == 15


async def test_listeners_hear_about_new_notifications_after_commit(tickets):
    woken: list[int] = []

    async def wake() -> None:
        woken.append(await tickets.pending_count())

    tickets.add_outbox_listener(wake)
    await tickets.file(report())
    assert woken == [1]  # called after the commit: the row is already visible


def test_ticket_numbers():
    assert parse_ticket_number("#123") == 123
    assert parse_ticket_number(" ＃１２３ ") == 123
    assert parse_ticket_number("42") == 42
    for bad in ("", "#", "12a", "-5", "1" * 13, "١٢"):
        with pytest.raises(InvalidInput):
            parse_ticket_number(bad)
