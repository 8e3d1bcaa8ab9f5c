#!/usr/bin/env python3
"""Generated djangorestframework-api-key keys for the benchmarks.

Key number i is "<prefix>.<secret>", with the prefix i as 8 digits and the secret the first 32
hex digits of SHA-256(str(i)). The table stores it as version 3.x does: "sha512$$<hex>".

    drf_keys.py table PATH COUNT      create the table rest_framework_api_key_apikey in PATH
    drf_keys.py sample COUNT SIZE     print SIZE keys of the COUNT generated ones, picked at random
"""
import hashlib
import random
import sqlite3
import sys


def key(index):
    prefix = f"{index:08d}"
    return f"{prefix}.{hashlib.sha256(str(index).encode()).hexdigest()[:32]}"


def create_table(path, count):
    db = sqlite3.connect(path)
    db.execute(
        'CREATE TABLE "rest_framework_api_key_apikey" ("id" varchar(150) NOT NULL PRIMARY KEY, '
        '"prefix" varchar(8) NOT NULL UNIQUE, "hashed_key" varchar(150) NOT NULL, '
        '"created" datetime NOT NULL, "name" varchar(50) NOT NULL, "revoked" bool NOT NULL, '
        '"expiry_date" datetime NULL)'
    )

    def rows():
        for index in range(count):
            text = key(index)
            prefix = text.split(".", 1)[0]
            hashed = "sha512$$" + hashlib.sha512(text.encode()).hexdigest()
            yield (f"{prefix}.{hashed}", prefix, hashed, "2024-01-01 00:00:00", "generated", 0, None)

    db.executemany('INSERT INTO "rest_framework_api_key_apikey" VALUES (?, ?, ?, ?, ?, ?, ?)', rows())
    db.commit()


def main(arguments):
    if len(arguments) == 3 and arguments[0] == "table":
        create_table(arguments[1], int(arguments[2]))
    elif len(arguments) == 3 and arguments[0] == "sample":
        count, size = int(arguments[1]), int(arguments[2])
        for index in random.sample(range(count), min(size, count)):
            print(key(index))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
