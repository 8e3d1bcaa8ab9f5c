"""Create the legacy credentials for bench/run.sh and print them as JSON.

Writes DIR/keys.db, a SQLite table of legacy API keys with one key stored as the SHA-256 hex
digest of the whole key, and prints {"token", "jwks_toml", "api_key"}: an RS256 JWT from the
legacy issuer https://legacy.bench.invalid/ (audience legacy-api, valid for 2 hours), the
issuer's public JWKS as a TOML inline table, and the API key.

Needs the `cryptography` package for the RSA key. Usage: python3 legacy.py DIR
"""

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import string
import sys
import time

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError:
    sys.exit("legacy.py: the Python package `cryptography` is missing: pip install cryptography")

ISSUER = "https://legacy.bench.invalid/"
KEY_ID = "bench-legacy-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def integer_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def make_token(private_key) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    claims = {
        "iss": ISSUER,
        "sub": "svc-billing",
        "aud": "legacy-api",
        "iat": now,
        "exp": now + 7200,
        "scope": "read",
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def jwks_toml(public_key) -> str:
    numbers = public_key.public_numbers()
    n = b64url(integer_bytes(numbers.n))
    e = b64url(integer_bytes(numbers.e))
    return (
        f'{{ keys = [{{ kty = "RSA", use = "sig", alg = "RS256", kid = "{KEY_ID}", '
        f'n = "{n}", e = "{e}" }}] }}'
    )


def make_key_table(directory: str) -> str:
    alphabet = string.ascii_letters + string.digits
    prefix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    secret = "".join(secrets.choice(alphabet) for _ in range(32))
    key = f"lk_{prefix}_{secret}"
    path = os.path.join(directory, "keys.db")
    with sqlite3.connect(path) as database:
        database.execute(
            "CREATE TABLE api_keys (prefix TEXT PRIMARY KEY, hash TEXT NOT NULL, "
            "revoked INTEGER NOT NULL, owner TEXT NOT NULL)"
        )
        database.execute(
            "INSERT INTO api_keys VALUES (?, ?, 0, 'svc-billing')",
            (prefix, hashlib.sha256(key.encode()).hexdigest()),
        )
    return key


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python3 legacy.py DIR")
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    print(
        json.dumps(
            {
                "token": make_token(private_key),
                "jwks_toml": jwks_toml(private_key.public_key()),
                "api_key": make_key_table(directory),
            }
        )
    )


if __name__ == "__main__":
    main()
