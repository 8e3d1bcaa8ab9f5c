#!/usr/bin/env python3
"""Sign HS256 access tokens the way the legacy identity provider of the example does.

Standard library only. The token carries the claims the example's `jwt` adapter checks
(`iss`, `aud`, `exp`) and maps (`org` to the tenant, `sub` to the machine, `roles`).

    python3 legacy_issuer.py --secret SECRET --org acme --client svc-billing
"""

import argparse
import base64
import hashlib
import hmac
import json
import time

ISSUER = "https://idp.legacy.example/"
AUDIENCE = "orders-api"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(secret: str, claims: dict) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="HS256 shared secret, at least 32 bytes")
    parser.add_argument("--org", required=True, help="legacy organisation, the claim `org`")
    parser.add_argument("--client", required=True, help="legacy client id, the claim `sub`")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args()

    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": args.client,
        "org": args.org,
        "roles": ["reader"],
        "scope": "orders:read",
        "iat": now,
        "exp": now + args.ttl,
    }
    print(sign(args.secret, claims))


if __name__ == "__main__":
    main()
