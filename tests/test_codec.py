"""The one callback-data codec: round trips, the 64-byte limit, forged data refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quickresponse.telegram.codec import MAX_BYTES, InvalidCallback, action, decode

CLAIM = action("t_claim_x", int)
PICK = action("t_pick_x", str, int)
NOARGS = action("t_menu_x")

ids = st.integers(min_value=-(2**62), max_value=2**62)
slugs = st.from_regex(r"[A-Za-z0-9_.\-]{1,40}", fullmatch=True)


@given(ids)
def test_numbers_round_trip(value):
    act, args = decode(CLAIM.pack(value))
    assert act is CLAIM or act == CLAIM
    assert args == (value,)


@given(slugs, st.integers(min_value=0, max_value=10**12))
def test_text_and_number_round_trip_or_refuse_to_exceed_64_bytes(slug, number):
    try:
        data = PICK.pack(slug, number)
    except ValueError:
        assert len(f"t_pick_x:{slug}:{number}".encode()) > MAX_BYTES
        return
    assert len(data.encode()) <= MAX_BYTES
    assert decode(data)[1] == (slug, number)


@given(st.text(max_size=200))
def test_arbitrary_data_is_decoded_or_refused_never_crashes(data):
    try:
        act, args = decode(data)
    except InvalidCallback:
        return
    assert act.pack(*args) == data


@pytest.mark.parametrize("forged", [
    "", "t_claim_x", "t_claim_x:", "t_claim_x:abc", "t_claim_x:1:2", "nope:1",
    "t_claim_x:" + "9" * 70, "t_pick_x:../etc:1", "t_pick_x:a b:1", "t_menu_x:1",
    "t_claim_x:１２", "t_pick_x:<b>:1",
])
def test_forged_or_stale_data_is_refused(forged):
    with pytest.raises(InvalidCallback):
        decode(forged)


def test_bad_arguments_cannot_be_packed():
    with pytest.raises(TypeError):
        CLAIM.pack("12")
    with pytest.raises(ValueError):
        PICK.pack("a:b", 1)
    with pytest.raises(ValueError):
        action("t_claim_x", str)  # same name, other arguments
