"""/report in the console chat: the same flow and rules as on Telegram, typed line by line."""

from __future__ import annotations

import io

from quickresponse.console import CONSOLE_USER_ID, Console
from tests.conftest import ADMIN_ID

DONGCHENG = "110101"


async def chat(services, *lines: str) -> str:
    out = io.StringIO()
    await Console(services, io.StringIO("".join(f"{line}\n" for line in lines)), out).run()
    return out.getvalue()


async def test_a_report_typed_in_the_console_becomes_a_ticket(services):
    await services.tickets.link_group(ADMIN_ID, DONGCHENG, -100101)
    out = await chat(
        services, "/lang zh", "/report",
        "9",  # not a category number: asked again
        "1",  # waterlogging
        "东长安街路口积水很深",
        "东城区东华门街道南池子大街",  # a typed address
        "1", "王先生",  # share my name
        "1",  # submit
    )
    assert "是哪一类问题？" in out and "请输入 1 到 7 之间的编号" in out
    assert "所在区：东城区（按地址识别）" in out
    assert "请核对您的反映" in out and "联系方式：王先生（仅姓名）" in out
    assert "已受理，工单号 #1" in out and "7月20日 10:30" in out
    (ticket,) = await services.tickets.my_tickets(CONSOLE_USER_ID)
    view = await services.tickets.view(ticket.id)
    assert view.district_id == DONGCHENG and view.routing_method == "address"
    assert view.contact_name == "王先生" and view.contact_phone is None
    assert view.address == "东城区东华门街道南池子大街"
    # The district group's post waits in the outbox for the Telegram bot to deliver it.
    assert await services.tickets.pending_count() == 1


async def test_console_report_by_district_number_with_edits_and_limits(services):
    out = await chat(
        services, "/lang en", "/report",
        "7",  # other
        "x" * 1200,  # too long: refused, asked again
        "Street light broken for a week",
        "3",  # district number 3: Chaoyang
        "3",  # anonymous
        "3",  # edit the description
        "Street light broken for two weeks",
        "1",  # submit
    )
    assert "That is too long (1200 characters)" in out
    assert "District: Chaoyang (chosen by the resident)" in out
    assert "Contact: not shared" in out
    view = await services.tickets.view(1)
    assert view.description == "Street light broken for two weeks"
    assert view.district_id == "110105" and not view.contact_consent


async def test_cancel_in_the_middle_files_nothing(services):
    out = await chat(services, "/lang en", "/report", "1", "/cancel", "what is a go bag")
    assert "Cancelled. Nothing was sent." in out
    assert await services.tickets.my_tickets(CONSOLE_USER_ID) == []


async def test_talk_to_staff_after_an_emergency_files_an_urgent_report(services):
    lines = ["7",  # other
             "1",  # Dongcheng
             "2", "李女士", "+86 139 0000 2222",  # name and phone
             "1"]  # submit
    out = io.StringIO()
    console = Console(services, io.StringIO("".join(f"{line}\n" for line in lines)), out)
    await console.answer("楼下着火了，烟很大，我们被困在家里")
    answer = out.getvalue()
    assert answer.index("119") < answer.index("转人工")  # the numbers to call come first
    (staff,) = [choice for choice in console.choices if choice.label == "转人工"]
    await staff.run()
    report = out.getvalue()[len(answer):]
    assert "如果有人身处危险，请立即拨打 110" in report
    assert "您的留言将作为问题描述：«楼下着火了，烟很大，我们被困在家里»" in report
    assert "已标记为紧急" in report
    view = await services.tickets.view(1)
    assert view.urgent and view.description == "楼下着火了，烟很大，我们被困在家里"
    assert view.contact_phone == "+86 139 0000 2222"


async def test_an_emergency_is_logged_in_one_choice_in_the_console(services):
    await services.subscriptions.subscribe(CONSOLE_USER_ID, [DONGCHENG])
    out = await chat(services, "/lang zh", "楼下着火了，烟很大，我们被困在家里", "1")
    assert "1. 🆘 同时向工作人员紧急报告" in out
    assert "紧急求助 #1 已登记，已转给东城区" in out and "110 / 119 / 120" in out
    (ticket,) = await services.tickets.my_tickets(CONSOLE_USER_ID)
    view = await services.tickets.view(ticket.id)
    assert view.urgent and (view.district_id, view.routing_method) == (DONGCHENG, "subscription")
