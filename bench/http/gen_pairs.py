#!/usr/bin/env python3
"""Writes signed webhook bodies for bench/http/webhook.lua (wrk's Lua has no
cheap HMAC). Same format as the anchor's gen-pairs.js, one line per body:

    <hex HMAC-SHA256 of body>\t<body>
    body = {"payment_hash":"<64 random hex>","status":"settled","amount_msat":1000000}

Every payment hash is random (32 bytes), so every line is a distinct delivery
for both the anchor (BullMQ jobId) and sunusav-server (webhook idempotency key).

Usage: WEBHOOK_HMAC_SECRET=... gen_pairs.py COUNT OUT
"""
import hashlib
import hmac
import os
import sys


def write_pairs(secret: bytes, count: int, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    rnd = os.urandom(32 * count).hex()
    lines = []
    for i in range(count):
        body = ('{"payment_hash":"%s","status":"settled","amount_msat":1000000}'
                % rnd[64 * i:64 * (i + 1)]).encode()
        lines.append(hmac.new(secret, body, hashlib.sha256).hexdigest().encode() + b"\t" + body)
    with open(out, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    secret = os.environ.get("WEBHOOK_HMAC_SECRET")
    if not secret or len(sys.argv) != 3:
        sys.exit("usage: WEBHOOK_HMAC_SECRET=... gen_pairs.py COUNT OUT")
    write_pairs(secret.encode(), int(sys.argv[1]), sys.argv[2])
    print(f"wrote {sys.argv[1]} signed bodies to {sys.argv[2]}")
