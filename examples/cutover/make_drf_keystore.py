#!/usr/bin/env python3
"""Create a djangorestframework-api-key 3.x key table in SQLite and add one key per owner.

Standard library only. The table is the one Django's migrations create for
djangorestframework-api-key 3.1 on SQLite. Each row is stored as the library stores it. The key is `<prefix>.<secret>` (8 and 32 characters of [A-Za-z0-9]), `hashed_key` is
`sha512$$` followed by the hex SHA-512 of the whole key, and `id` is `<prefix>.<hashed_key>`.
Prints a JSON object from each owner (the row's `name`) to its key.

    python3 make_drf_keystore.py legacy.sqlite3 acme:reporting globex:sync
"""

import hashlib
import json
import secrets
import sqlite3
import string
import sys
from datetime import datetime, timezone

ALPHABET = string.ascii_letters + string.digits

DDL = [
    'CREATE TABLE "rest_framework_api_key_apikey" ("id" varchar(150) NOT NULL PRIMARY KEY, '
    '"prefix" varchar(8) NOT NULL UNIQUE, "hashed_key" varchar(150) NOT NULL, '
    '"created" datetime NOT NULL, "name" varchar(50) NOT NULL, "revoked" bool NOT NULL, '
    '"expiry_date" datetime NULL)',
    'CREATE INDEX "rest_framework_api_key_apikey_created_c61872d9" '
    'ON "rest_framework_api_key_apikey" ("created")',
]


def random_text(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: make_drf_keystore.py DATABASE OWNER [OWNER ...]")
    database, owners = sys.argv[1], sys.argv[2:]

    connection = sqlite3.connect(database)
    for statement in DDL:
        connection.execute(statement)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    keys = {}
    for owner in owners:
        prefix = random_text(8)
        key = f"{prefix}.{random_text(32)}"
        hashed_key = "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
        connection.execute(
            'INSERT INTO "rest_framework_api_key_apikey" '
            "(id, prefix, hashed_key, created, name, revoked, expiry_date) "
            "VALUES (?, ?, ?, ?, ?, 0, NULL)",
            (f"{prefix}.{hashed_key}", prefix, hashed_key, created, owner),
        )
        keys[owner] = key
    connection.commit()
    connection.close()
    print(json.dumps(keys))


if __name__ == "__main__":
    main()
