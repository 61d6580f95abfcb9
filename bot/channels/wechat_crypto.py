"""WeChat callback crypto: signatures and the "safe mode" message encryption.

One scheme serves the Official Account (公众号) in safe mode, WeCom (企业微信) apps and WeCom
intelligent robots; only the receive id differs (the appid, the corpid, or "" for robots).

- Plain signature: sha1 hex of the sorted, concatenated token, timestamp and nonce.
- Message signature: the same over token, timestamp, nonce and the ciphertext.
- Encryption: AES-256-CBC with key = base64(EncodingAESKey + "=") and iv = key[:16], over
  random(16) + len(msg) as 4 bytes big-endian + msg + receive id, PKCS#7-padded to 32 bytes.

Nothing here knows HTTP: callers map SignatureError and ReceiverError to 403 and DecryptError
to 400. Checking that the timestamp is recent, and refusing replayed nonces, is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# WeChat pads to 32 bytes although AES blocks are 16: pad values run from 1 to 32.
_PAD_BLOCK = 32
_AES_BLOCK = 16
_PREFIX_LEN = 16
_LENGTH_LEN = 4
_KEY_TEXT_LEN = 43
_KEY_LEN = 32


class CryptoError(Exception):
    """Base."""


class SignatureError(CryptoError):
    """Missing or wrong signature (HTTP 403)."""


class DecryptError(CryptoError):
    """Not decryptable: bad base64, bad length, bad padding, bad inner length (HTTP 400)."""


class ReceiverError(CryptoError):
    """Decrypted fine but for another appid/corpid (HTTP 403)."""


def sha1_signature(*parts: str) -> str:
    """The sha1 hex digest of the parts, sorted and joined, as WeChat signs its callbacks."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected: str, *parts: str) -> None:
    """Raise SignatureError unless `expected` is the signature of `parts`."""
    if not expected:
        raise SignatureError("signature missing")
    actual = sha1_signature(*parts)
    # Bytes, because compare_digest refuses str with non-ASCII characters, and a query string
    # can carry anything.
    if not hmac.compare_digest(actual.encode("ascii"), expected.encode("utf-8", "replace")):
        raise SignatureError("signature does not match")


def _decode_aes_key(text: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey; ValueError if it is not one."""
    if not isinstance(text, str) or len(text) != _KEY_TEXT_LEN:
        raise ValueError(f"an EncodingAESKey has {_KEY_TEXT_LEN} characters")
    try:
        key = base64.b64decode(text + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("an EncodingAESKey is base64 text") from exc
    if len(key) != _KEY_LEN:
        raise ValueError(f"an EncodingAESKey decodes to {_KEY_LEN} bytes")
    return key


def _pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 bytes; a whole block of padding when already aligned."""
    amount = _PAD_BLOCK - len(data) % _PAD_BLOCK
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    """Undo `_pad`, refusing anything `_pad` could not have produced."""
    if not data:
        raise DecryptError("nothing to unpad")
    amount = data[-1]
    if not 1 <= amount <= _PAD_BLOCK or amount > len(data):
        raise DecryptError("bad padding")
    if data[-amount:] != bytes([amount]) * amount:
        raise DecryptError("bad padding")
    return data[:-amount]


def _cipher(key: bytes) -> Cipher:
    return Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK]))


def _decode_ciphertext(encrypted: str) -> bytes:
    try:
        ciphertext = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DecryptError("ciphertext is not base64") from exc
    if not ciphertext or len(ciphertext) % _AES_BLOCK:
        raise DecryptError("ciphertext is not a whole number of AES blocks")
    return ciphertext


def _split_plaintext(plaintext: bytes) -> tuple[bytes, bytes]:
    """(message, receive id) from a padded plaintext; DecryptError if its framing is wrong."""
    body = _unpad(plaintext)
    header_len = _PREFIX_LEN + _LENGTH_LEN
    if len(body) < header_len:
        raise DecryptError("plaintext shorter than its header")
    (length,) = struct.unpack(">I", body[_PREFIX_LEN:header_len])
    end = header_len + length
    if end > len(body):
        raise DecryptError("message length runs past the plaintext")
    return body[header_len:end], body[end:]


def _require_timestamp(timestamp: str) -> int:
    # The XML envelope carries the timestamp bare, outside CDATA, so it must be plain digits.
    if not (isinstance(timestamp, str) and timestamp.isascii() and timestamp.isdigit()):
        raise ValueError("timestamp must be decimal digits")
    return int(timestamp)


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA: end the section between "]]" and ">" and open another.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class MessageCrypto:
    """Signs, encrypts and decrypts the messages of one account (appid, corpid or robot)."""

    def __init__(self, token: str, aes_keys: Sequence[str], receive_id: str) -> None:
        # A lone string is a sequence too, of one-character "keys"; say what went wrong instead.
        if isinstance(aes_keys, str):
            raise TypeError("aes_keys is a sequence of EncodingAESKeys, not one key")
        if not aes_keys:
            raise ValueError("at least one EncodingAESKey is needed")
        self._token = token
        # The first key encrypts; all of them decrypt, so that callbacks already signed and
        # encrypted with the previous key still arrive while the new one is rolled out.
        self._keys = [_decode_aes_key(text) for text in aes_keys]
        self._receive_id = receive_id.encode("utf-8")

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """The msg_signature of a ciphertext."""
        return sha1_signature(self._token, timestamp, nonce, encrypted)

    def verify_and_decrypt(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> bytes:
        """The message, after checking its signature (SignatureError) and then decrypting."""
        # The signature goes first so that nobody without the token learns anything from how
        # decryption fails (a padding oracle needs many forged ciphertexts).
        check_signature(msg_signature, self._token, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside base64 ciphertext, trying the keys in order."""
        ciphertext = _decode_ciphertext(encrypted)
        other_receiver = False
        for key in self._keys:
            decryptor = _cipher(key).decryptor()
            plaintext = decryptor.update(ciphertext) + decryptor.finalize()
            try:
                message, receive_id = _split_plaintext(plaintext)
            except DecryptError:
                continue
            if receive_id == self._receive_id:
                return message
            # Another key may still be the right one, so keep trying before saying so.
            other_receiver = True
        if other_receiver:
            raise ReceiverError("message is for another receiver")
        raise DecryptError("no key decrypts the message")

    def encrypt(self, message: bytes, *, prefix: bytes | None = None) -> str:
        """Base64 ciphertext of `message` under the current key.

        `prefix` is the 16 random bytes that lead the plaintext; tests pass fixed ones.
        """
        if not isinstance(message, bytes | bytearray):
            raise TypeError("message must be bytes")
        if prefix is None:
            prefix = os.urandom(_PREFIX_LEN)
        if len(prefix) != _PREFIX_LEN:
            raise ValueError(f"prefix must be {_PREFIX_LEN} bytes")
        plaintext = prefix + struct.pack(">I", len(message)) + bytes(message) + self._receive_id
        encryptor = _cipher(self._keys[0]).encryptor()
        ciphertext = encryptor.update(_pad(plaintext)) + encryptor.finalize()
        return base64.b64encode(ciphertext).decode("ascii")

    def encrypt_reply_xml(self, reply: str, timestamp: str, nonce: str) -> str:
        """A passive reply in the encrypted XML envelope."""
        _require_timestamp(timestamp)
        encrypted = self.encrypt(reply.encode("utf-8"))
        signature = self.signature(timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
            f"<MsgSignature>{_cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
        )

    def encrypt_reply_json(self, reply: str, timestamp: str, nonce: str) -> str:
        """A WeCom intelligent robot's passive reply: the encrypted JSON envelope."""
        timestamp_value = _require_timestamp(timestamp)
        encrypted = self.encrypt(reply.encode("utf-8"))
        return json.dumps(
            {
                "encrypt": encrypted,
                "msgsignature": self.signature(timestamp, nonce, encrypted),
                "timestamp": timestamp_value,
                "nonce": nonce,
            }
        )
