"""Residents choose the districts, hazards and levels they are warned about."""

from __future__ import annotations

import pytest

from quickresponse.alerts.errors import UnknownDistrict
from quickresponse.alerts.hazards import Hazard, Level
from tests.alert_helpers import CHAOYANG, DONGCHENG, HAIDIAN


async def test_subscribe_lists_districts_in_city_order_and_is_idempotent(services):
    subs = services.subscriptions
    await subs.subscribe(1001, [HAIDIAN])
    view = await subs.subscribe(1001, [CHAOYANG, HAIDIAN, CHAOYANG])
    assert view.district_ids == (CHAOYANG, HAIDIAN)
    assert view.subscribed
    assert (await subs.get(1001)).district_ids == (CHAOYANG, HAIDIAN)
    assert (await subs.get(1002)).district_ids == ()


async def test_unknown_district_changes_nothing(services):
    subs = services.subscriptions
    await subs.subscribe(1001, [CHAOYANG])
    with pytest.raises(UnknownDistrict):
        await subs.subscribe(1001, [HAIDIAN, "999999"])
    assert (await subs.get(1001)).district_ids == (CHAOYANG,)


async def test_unsubscribe_one_district_or_everything(services):
    subs = services.subscriptions
    await subs.subscribe(1001, [CHAOYANG, HAIDIAN, DONGCHENG])
    await subs.set_preferences(1001, hazards=[Hazard.FLOOD], min_level=Level.ORANGE)
    view = await subs.unsubscribe(1001, [HAIDIAN])
    assert view.district_ids == (DONGCHENG, CHAOYANG)
    assert view.hazards == (Hazard.FLOOD,)
    view = await subs.unsubscribe(1001)
    assert view.district_ids == ()
    assert view.hazards == () and view.min_level == Level.BLUE


async def test_recipients_are_counted_once_per_chat(services):
    subs = services.subscriptions
    await subs.subscribe(1, [CHAOYANG, HAIDIAN])
    await subs.subscribe(2, [HAIDIAN])
    await subs.subscribe(3, [DONGCHENG])
    count = await subs.count_recipients([CHAOYANG, HAIDIAN], Hazard.RAINSTORM, Level.BLUE)
    assert count == 2


async def test_preferences_filter_hazards_and_minimum_level(services):
    subs = services.subscriptions
    await subs.subscribe(1, [CHAOYANG])
    await subs.subscribe(2, [CHAOYANG])
    await subs.subscribe(3, [CHAOYANG])
    await subs.set_preferences(2, hazards=[Hazard.EARTHQUAKE, Hazard.FLOOD])
    await subs.set_preferences(3, min_level=Level.ORANGE)
    assert await subs.count_recipients([CHAOYANG], Hazard.RAINSTORM, Level.YELLOW) == 1
    assert await subs.count_recipients([CHAOYANG], Hazard.RAINSTORM, Level.RED) == 2
    assert await subs.count_recipients([CHAOYANG], Hazard.FLOOD, Level.RED) == 3
    view = await subs.get(2)
    assert view.wants(Hazard.FLOOD, Level.BLUE)
    assert not view.wants(Hazard.HEAT, Level.RED)


async def test_inactive_users_are_not_recipients(services):
    subs = services.subscriptions
    for user_id in (1, 2):
        await services.users.touch(user_id)
        await subs.subscribe(user_id, [CHAOYANG])
    await services.users.mark_inactive(2)
    assert await subs.count_recipients([CHAOYANG], Hazard.RAINSTORM, Level.RED) == 1
    await services.users.touch(2)  # they came back: warnings resume
    assert await subs.count_recipients([CHAOYANG], Hazard.RAINSTORM, Level.RED) == 2


async def test_group_chats_can_subscribe(services):
    view = await services.subscriptions.subscribe(-100123, [CHAOYANG])
    assert view.chat_id == -100123 and view.district_ids == (CHAOYANG,)
    assert await services.subscriptions.count_recipients(
        [CHAOYANG], Hazard.RAINSTORM, Level.RED) == 1
