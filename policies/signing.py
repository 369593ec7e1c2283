"""ed25519 signatures over a policy's content hash (pynacl)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["generate_key", "public_key_of", "sign_hash", "verify_hash"]


def generate_key() -> str:
    """A new ed25519 signing key (hex seed). Keep it secret; publish `public_key_of(key)`."""
    from nacl.signing import SigningKey

    return SigningKey.generate().encode().hex()


def public_key_of(signing_key_hex: str) -> str:
    """The hex verify key for a hex signing key."""
    from nacl.signing import SigningKey

    return SigningKey(bytes.fromhex(signing_key_hex)).verify_key.encode().hex()


def sign_hash(content_hash: str, signing_key_hex: str) -> str:
    """Detached signature (hex) over the UTF-8 bytes of the hex content hash."""
    from nacl.signing import SigningKey

    return SigningKey(bytes.fromhex(signing_key_hex)).sign(content_hash.encode()).signature.hex()


def verify_hash(content_hash: str, signature_hex: str, trusted_keys: Iterable[str]) -> bool:
    """True when any trusted public key verifies the signature over the content hash."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    for key in trusted_keys:
        try:
            VerifyKey(bytes.fromhex(key)).verify(content_hash.encode(), signature)
        except (BadSignatureError, ValueError):
            continue
        return True
    return False
