"""WeChat and WeCom callback crypto and message XML, checked against published vectors.

Vectors:
- WeCom (corpid receive id): wechatpy's tests/test_crypto.py (github.com/wechatpy/wechatpy).
- Plain signature: wechatpy's tests/test_utils.py.
- Official Account (appid receive id): Tencent's WXBizMsgCrypt sample (Sample.py, 2014), since
  wechatpy's test_crypto.py has no Official Account vector.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat_crypto import (
    DecryptError,
    MessageCrypto,
    ReceiverError,
    SignatureError,
    check_signature,
    sha1_signature,
)
from bot.channels.wechat_xml import XmlError, parse_message, render_message

# wechatpy tests/test_crypto.py: WeCom app, receive id = corpid.
WECOM_TOKEN = "123456"
WECOM_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WECOM_CORPID = "wx49f0ab532d5d035a"
ECHO_TIMESTAMP = "1411443780"
ECHO_NONCE = "437374425"
ECHO_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
ECHO_STR = (
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
)
MESSAGE_TIMESTAMP = "1411525903"
MESSAGE_NONCE = "461056294"
MESSAGE_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
MESSAGE_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYy"
    "olBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWO"
    "MZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7ml"
    "sl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
# The reply that wechatpy encrypts with the random prefix fixed to "1234567890123456".
REPLY_PREFIX = b"1234567890123456"
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"
REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGs"
    "L8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSj"
    "PUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJv"
    "FurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFY"
    "FMNMpatF9XiKzHo3"
)

# Tencent's WXBizMsgCrypt sample: Official Account in safe mode, receive id = appid.
OA_TOKEN = "spamtest"
OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_APPID = "wx2c2769f8efd9abc2"
OA_TIMESTAMP = "1409735669"
OA_NONCE = "1320562132"
OA_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
OA_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PG"
    "HQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6"
    "tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhv"
    "Ql+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)

# A second key of our own, standing for the account's new EncodingAESKey.
NEW_KEY = base64.b64encode(bytes(range(32))).decode("ascii").rstrip("=")
FIXED_PREFIX = b"\x00" * 16


def wecom() -> MessageCrypto:
    return MessageCrypto(WECOM_TOKEN, [WECOM_KEY], WECOM_CORPID)


def encrypt_raw(key_text: str, plaintext: bytes) -> str:
    """AES-CBC as WeChat uses it, without any padding: for hand-built malformed plaintexts."""
    key = base64.b64decode(key_text + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode("ascii")


def framed(message: bytes, receive_id: bytes) -> bytes:
    return FIXED_PREFIX + struct.pack(">I", len(message)) + message + receive_id


def pad32(data: bytes) -> bytes:
    amount = 32 - len(data) % 32
    return data + bytes([amount]) * amount


def flip_byte(encrypted: str, index: int, mask: int = 0x80) -> str:
    data = bytearray(base64.b64decode(encrypted))
    data[index] ^= mask
    return base64.b64encode(bytes(data)).decode("ascii")


# Signatures


def test_plain_signature_vector() -> None:
    # wechatpy tests/test_utils.py: token "test".
    assert sha1_signature("test", "1410685589", "test") == (
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    )
    check_signature("f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "test", "1410685589", "test")
    with pytest.raises(SignatureError):
        check_signature("f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", "test", "1410685589", "test")


def test_signature_does_not_depend_on_argument_order() -> None:
    assert sha1_signature("b", "a", "c") == sha1_signature("c", "b", "a")


@pytest.mark.parametrize("expected", [None, "", "签名", "DD6B9C95B495B3F7E2901BFBC76C664930FFDB96"])
def test_missing_odd_or_wrong_signatures_are_refused(expected: str | None) -> None:
    with pytest.raises(SignatureError):
        check_signature(expected, WECOM_TOKEN, ECHO_TIMESTAMP, ECHO_NONCE, ECHO_STR)  # type: ignore[arg-type]


def test_wecom_echostr_vector() -> None:
    crypto = wecom()
    assert crypto.signature(ECHO_TIMESTAMP, ECHO_NONCE, ECHO_STR) == ECHO_SIGNATURE
    echo = crypto.verify_and_decrypt(ECHO_SIGNATURE, ECHO_TIMESTAMP, ECHO_NONCE, ECHO_STR)
    assert echo == b"5927782489442352469"


def test_wecom_echostr_with_another_nonce_is_refused() -> None:
    # wechatpy's failing case: the same signature with nonce 437374424.
    with pytest.raises(SignatureError):
        wecom().verify_and_decrypt(ECHO_SIGNATURE, ECHO_TIMESTAMP, "437374424", ECHO_STR)


def test_wecom_message_vector() -> None:
    body = wecom().verify_and_decrypt(
        MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE, MESSAGE_ENCRYPT
    )
    fields = parse_message(body)
    assert fields["Content"] == "test"
    assert fields["FromUserName"] == "messense"
    assert fields["ToUserName"] == WECOM_CORPID
    assert fields["MsgId"] == "4363689963896700987"
    assert fields["AgentID"] == "1"


def test_wecom_reply_vector_is_reproduced_with_its_prefix() -> None:
    crypto = wecom()
    encrypted = crypto.encrypt(REPLY.encode("utf-8"), prefix=REPLY_PREFIX)
    assert encrypted == REPLY_ENCRYPT
    assert crypto.signature(MESSAGE_TIMESTAMP, MESSAGE_NONCE, encrypted) == REPLY_SIGNATURE


def test_official_account_message_vector() -> None:
    crypto = MessageCrypto(OA_TOKEN, [OA_KEY], OA_APPID)
    body = crypto.verify_and_decrypt(OA_SIGNATURE, OA_TIMESTAMP, OA_NONCE, OA_ENCRYPT)
    fields = parse_message(body)
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "abcdteT"
    assert fields["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert fields["MsgId"] == "6054768590064713728"


def test_official_account_message_for_another_appid_is_refused() -> None:
    with pytest.raises(ReceiverError):
        MessageCrypto(OA_TOKEN, [OA_KEY], "wx0000000000000000").decrypt(OA_ENCRYPT)


def test_wrong_signature_is_checked_before_decrypting() -> None:
    with pytest.raises(SignatureError):
        wecom().verify_and_decrypt("0" * 40, MESSAGE_TIMESTAMP, MESSAGE_NONCE, "not base64!")


# Encryption round trips and replies


@pytest.mark.parametrize("message", [b"", b"x", "你好，社区".encode(), b"a" * 12, b"b" * 1000])
def test_round_trip(message: bytes) -> None:
    crypto = wecom()
    encrypted = crypto.encrypt(message)
    # Padding always adds 1..32 bytes and keeps whole 32-byte blocks.
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert crypto.decrypt(encrypted) == message


def test_each_encryption_uses_a_fresh_prefix() -> None:
    crypto = wecom()
    assert crypto.encrypt(b"same") != crypto.encrypt(b"same")


def test_encrypted_xml_reply_envelope() -> None:
    crypto = wecom()
    envelope = crypto.encrypt_reply_xml("好的，马上来", "1700000000", "nonce]]>x")
    assert envelope.startswith("<xml><Encrypt><![CDATA[")
    fields = parse_message(envelope.encode("utf-8"))
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert fields["TimeStamp"] == "1700000000"
    # A hostile nonce comes back intact rather than breaking out of its CDATA section.
    assert fields["Nonce"] == "nonce]]>x"
    reply = crypto.verify_and_decrypt(
        fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
    )
    assert reply.decode("utf-8") == "好的，马上来"


def test_encrypted_json_reply_for_the_robot() -> None:
    robot = MessageCrypto(WECOM_TOKEN, [WECOM_KEY], "")
    reply = json.loads(robot.encrypt_reply_json('{"msgtype": "text"}', "1700000000", "abc"))
    assert set(reply) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    assert reply["timestamp"] == 1700000000 and reply["nonce"] == "abc"
    body = robot.verify_and_decrypt(
        reply["msgsignature"], "1700000000", reply["nonce"], reply["encrypt"]
    )
    assert body == b'{"msgtype": "text"}'


@pytest.mark.parametrize("timestamp", ["", "12a", " 1", "-1", "１２"])
def test_reply_timestamps_must_be_plain_digits(timestamp: str) -> None:
    with pytest.raises(ValueError):
        wecom().encrypt_reply_xml("hi", timestamp, "n")
    with pytest.raises(ValueError):
        wecom().encrypt_reply_json("hi", timestamp, "n")


def test_encrypt_refuses_text_and_short_prefixes() -> None:
    with pytest.raises(TypeError):
        wecom().encrypt("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        wecom().encrypt(b"x", prefix=b"short")


# Receive ids


def test_robot_receive_id_is_empty() -> None:
    robot = MessageCrypto(WECOM_TOKEN, [WECOM_KEY], "")
    encrypted = robot.encrypt(b'{"msgtype": "text"}', prefix=FIXED_PREFIX)
    assert robot.decrypt(encrypted) == b'{"msgtype": "text"}'
    # The plaintext ends right after the message: nothing is appended for a robot.
    assert encrypted == encrypt_raw(WECOM_KEY, pad32(framed(b'{"msgtype": "text"}', b"")))


def test_app_message_is_refused_by_the_robot_and_robot_message_by_the_app() -> None:
    robot = MessageCrypto(WECOM_TOKEN, [WECOM_KEY], "")
    with pytest.raises(ReceiverError):
        robot.decrypt(MESSAGE_ENCRYPT)
    with pytest.raises(ReceiverError):
        wecom().decrypt(robot.encrypt(b"{}"))


@pytest.mark.parametrize("receive_id", ["wx49f0ab532d5d035", "wx49f0ab532d5d035a ", "WX49F0AB"])
def test_receive_id_must_match_exactly(receive_id: str) -> None:
    with pytest.raises(ReceiverError):
        MessageCrypto(WECOM_TOKEN, [WECOM_KEY], receive_id).decrypt(MESSAGE_ENCRYPT)


# Key rotation


def test_previous_key_still_decrypts_during_rotation() -> None:
    old_only = wecom()
    rotating = MessageCrypto(WECOM_TOKEN, [NEW_KEY, WECOM_KEY], WECOM_CORPID)
    assert rotating.decrypt(old_only.encrypt(b"sent before the switch")) == (
        b"sent before the switch"
    )
    assert rotating.decrypt(MESSAGE_ENCRYPT).startswith(b"<xml>")


def test_rotation_encrypts_with_the_first_key_only() -> None:
    rotating = MessageCrypto(WECOM_TOKEN, [NEW_KEY, WECOM_KEY], WECOM_CORPID)
    encrypted = rotating.encrypt(b"reply", prefix=FIXED_PREFIX)
    assert MessageCrypto(WECOM_TOKEN, [NEW_KEY], WECOM_CORPID).decrypt(encrypted) == b"reply"
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypted)


def test_rotation_reports_another_receiver_only_when_no_key_fits() -> None:
    rotating = MessageCrypto(WECOM_TOKEN, [NEW_KEY, WECOM_KEY], "wx0000000000000000")
    with pytest.raises(ReceiverError):
        rotating.decrypt(MESSAGE_ENCRYPT)


@pytest.mark.parametrize(
    "keys",
    [
        [],
        [WECOM_KEY[:-1]],
        [WECOM_KEY + "A"],
        ["!" * 43],
        [WECOM_KEY, "too short"],
        ["A" * 42 + "="],  # 43 characters, but only 31 bytes
        [" " + WECOM_KEY[1:]],
    ],
)
def test_bad_keys_are_refused(keys: list[str]) -> None:
    with pytest.raises(ValueError):
        MessageCrypto(WECOM_TOKEN, keys, WECOM_CORPID)


def test_a_single_key_string_is_not_a_key_list() -> None:
    with pytest.raises(TypeError):
        MessageCrypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORPID)


# Malformed ciphertext


@pytest.mark.parametrize(
    "encrypted",
    [
        "",
        "not base64!",
        "中文",
        ECHO_STR + "#",
        ECHO_STR[:-2],  # base64 with its padding cut off
        base64.b64encode(b"x" * 20).decode(),  # not whole AES blocks
        base64.b64encode(b"x" * 15).decode(),
    ],
)
def test_undecodable_ciphertext(encrypted: str) -> None:
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypted)


def test_tampered_ciphertext_fails_the_signature() -> None:
    tampered = flip_byte(MESSAGE_ENCRYPT, 5)
    with pytest.raises(SignatureError):
        wecom().verify_and_decrypt(MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP, MESSAGE_NONCE, tampered)


def test_tampered_ciphertext_does_not_decrypt() -> None:
    # Byte 0 of the first block flips the top bit of the length field in the second plaintext
    # block: the message would run far past the plaintext.
    with pytest.raises(DecryptError):
        wecom().decrypt(flip_byte(ECHO_STR, 0))
    # The last byte of the second-to-last block flips the padding byte (7 becomes 135).
    last_of_previous_block = len(base64.b64decode(ECHO_STR)) - 16 - 1
    with pytest.raises(DecryptError):
        wecom().decrypt(flip_byte(ECHO_STR, last_of_previous_block))


@pytest.mark.parametrize("pad_byte", [0, 33, 255])
def test_padding_byte_outside_1_to_32(pad_byte: int) -> None:
    plaintext = framed(b"hello", WECOM_CORPID.encode())
    # Every trailing byte equals the pad byte, so only its range can give it away.
    count = max(pad_byte, 1)
    count += -(len(plaintext) + count) % 32
    plaintext += bytes([pad_byte]) * count
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypt_raw(WECOM_KEY, plaintext))


def test_padding_bytes_must_all_be_equal() -> None:
    plaintext = pad32(framed(b"hello", WECOM_CORPID.encode()))
    amount = plaintext[-1]
    assert amount >= 2
    broken = plaintext[:-amount] + b"\x01" + bytes([amount]) * (amount - 1)
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypt_raw(WECOM_KEY, broken))


def test_a_whole_block_of_padding_is_accepted() -> None:
    # 16 + 4 + 26 + 18 = 64 bytes are already aligned, so 32 bytes of 0x20 follow.
    plaintext = pad32(framed(b"x" * 26, WECOM_CORPID.encode()))
    assert plaintext[-33:] == b"a" + b"\x20" * 32
    assert wecom().decrypt(encrypt_raw(WECOM_KEY, plaintext)) == b"x" * 26
    assert wecom().encrypt(b"x" * 26, prefix=FIXED_PREFIX) == encrypt_raw(WECOM_KEY, plaintext)


@pytest.mark.parametrize("claimed", [len(b"hello") + len(WECOM_CORPID) + 1, 2**32 - 1])
def test_inner_length_must_fit(claimed: int) -> None:
    plaintext = FIXED_PREFIX + struct.pack(">I", claimed) + b"hello" + WECOM_CORPID.encode()
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypt_raw(WECOM_KEY, pad32(plaintext)))


def test_plaintext_shorter_than_its_header() -> None:
    with pytest.raises(DecryptError):
        wecom().decrypt(encrypt_raw(WECOM_KEY, pad32(b"only ten b")))


# XML


def test_text_message_parses() -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_123]]></ToUserName>"
        "<FromUserName><![CDATA[o_resident]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[ 水管漏了 <急> & 快 ]]></Content><MsgId>1234567890</MsgId>"
        "<Empty></Empty></xml>"
    ).encode()
    assert parse_message(body) == {
        "ToUserName": "gh_123",
        "FromUserName": "o_resident",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": " 水管漏了 <急> & 快 ",
        "MsgId": "1234567890",
        "Empty": "",
    }


def test_nested_fields_are_empty_and_their_children_ignored() -> None:
    body = (
        b"<xml><MsgType><![CDATA[event]]></MsgType><ScanCodeInfo>"
        b"<ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult>"
        b"</ScanCodeInfo></xml>"
    )
    assert parse_message(body) == {"MsgType": "event", "ScanCodeInfo": ""}


def test_declared_encoding_is_ignored_and_bom_accepted() -> None:
    body = '\ufeff<?xml version="1.0" encoding="ISO-8859-1"?><xml><A>居民</A></xml>'
    assert parse_message(body.encode("utf-8")) == {"A": "居民"}


def test_cdata_round_trip_with_its_terminator_inside() -> None:
    hostile = "a]]>b]]]]>c<![CDATA[d]]></Content><MsgType>event"
    rendered = render_message({"Content": hostile, "CreateTime": 1700000000, "MsgType": "text"})
    assert "<CreateTime>1700000000</CreateTime>" in rendered
    assert parse_message(rendered.encode("utf-8")) == {
        "Content": hostile,
        "CreateTime": "1700000000",
        "MsgType": "text",
    }


def test_render_drops_characters_xml_cannot_carry() -> None:
    rendered = render_message({"Content": "a\x00b\x1bc\td\ne"})
    assert parse_message(rendered.encode("utf-8")) == {"Content": "abc\td\ne"}


@pytest.mark.parametrize(
    "fields", [{"bad tag": "x"}, {"<x>": "x"}, {"": "x"}, {"A": True}, {"A": 1.5}]
)
def test_render_refuses_bad_tags_and_values(fields: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        render_message(fields)  # type: ignore[arg-type]


def test_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>'
        "<xml><Content>&leak;</Content></xml>"
    ).encode()
    with pytest.raises(XmlError) as caught:
        parse_message(body)
    assert "TOP-SECRET-4711" not in str(caught.value)
    assert "TOP-SECRET-4711" not in repr(caught.value.__cause__)


def test_external_dtd_is_refused(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "TOP-SECRET-4711">')
    body = f'<!DOCTYPE xml SYSTEM "{dtd.as_uri()}"><xml><Content>&leak;</Content></xml>'
    with pytest.raises(XmlError):
        parse_message(body.encode())


def test_any_doctype_is_refused() -> None:
    with pytest.raises(XmlError):
        parse_message(b"<!DOCTYPE xml><xml><Content>hi</Content></xml>")


def test_billion_laughs_is_refused_quickly() -> None:
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "' + f"&lol{level - 1};" * 10 + '">')
    body = (
        '<?xml version="1.0"?><!DOCTYPE xml [' + "".join(entities) + "]>"
        "<xml><Content>&lol9;</Content></xml>"
    ).encode()
    started = time.monotonic()
    with pytest.raises(XmlError):
        parse_message(body)
    assert time.monotonic() - started < 1


def test_undeclared_entity_is_refused() -> None:
    with pytest.raises(XmlError):
        parse_message(b"<xml><Content>&lol;</Content></xml>")


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Content>\xff\xfe</Content></xml>",  # invalid UTF-8
        "<xml><Content>居民</Content></xml>".encode("gbk"),
        b"<html><Content>x</Content></html>",  # not a WeChat message
        b'<xml xmlns="urn:x"><A>1</A></xml>',  # a namespaced root is another element
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content>",  # truncated
        b"<xml><A>1</A></xml><xml/>",  # two roots
        b"",
        b"   ",
        b"<xml><Content>1</Content><Content>2</Content></xml>",  # ambiguous duplicate
    ],
)
def test_malformed_or_foreign_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(XmlError):
        parse_message(body)


def test_xml_error_is_a_value_error() -> None:
    assert issubclass(XmlError, ValueError)
