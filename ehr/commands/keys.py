"""``ketamine-cds keys generate`` and ``ketamine-cds token``: test credentials for integration.

    ketamine-cds keys generate --out ./keys [--kid my-ehr-1]
        writes keys/private-jwk.json (keep secret) and keys/jwks.json (publish or configure inline)
    ketamine-cds token --iss https://ehr.example --aud https://cds.example.org/cds-services/ID \\
        --key keys/private-jwk.json [--ttl 300] [--tenant T] [--jku URL]
        prints a signed ES384 JWT for one call (a fresh jti each time)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from ehr.keys import generate_keys, mint_token


def _cmd_keys(args: argparse.Namespace) -> int:
    private_jwk, jwks = generate_keys(args.kid)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private_path = out / "private-jwk.json"
    private_path.write_text(json.dumps(private_jwk, indent=1) + "\n", encoding="utf-8")
    os.chmod(private_path, 0o600)
    (out / "jwks.json").write_text(json.dumps(jwks, indent=1) + "\n", encoding="utf-8")
    example = [{"iss": "https://ehr.example.org", "jwks": jwks}]
    sys.stdout.write(
        f"wrote {private_path} (secret) and {out / 'jwks.json'} (public)\n\n"
        "Trust it (replace iss with your client's issuer):\n"
        f"  export KETAMINE_CDS_TRUSTED_CLIENTS='{json.dumps(example)}'\n"
        "  export KETAMINE_CDS_PUBLIC_BASE_URL=http://127.0.0.1:8080\n"
    )
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    try:
        private_jwk = json.loads(Path(args.key).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        sys.stderr.write(f"error: cannot read the private key {args.key}: {exc}\n")
        return 2
    if "d" not in private_jwk:
        sys.stderr.write(f"error: {args.key} is not a private JWK (no 'd')\n")
        return 2
    token = mint_token(
        private_jwk, iss=args.iss, aud=args.aud, ttl=args.ttl, tenant=args.tenant, jku=args.jku
    )
    sys.stdout.write(token + "\n")
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage test signing keys for a CDS client")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="generate an ES384 key pair and its JWKS")
    generate.add_argument("--out", default="keys", help="directory to write the key files to")
    generate.add_argument("--kid", default=f"cds-client-{uuid.uuid4().hex[:8]}")
    generate.set_defaults(func=_cmd_keys)
    token = sub.add_parser("token", help="mint a signed CDS client JWT for one call")
    token.add_argument("--iss", required=True, help="issuer, as configured for the client")
    token.add_argument("--aud", required=True, help="the exact endpoint URL being called")
    token.add_argument("--key", required=True, help="private JWK file from `keys generate`")
    token.add_argument("--ttl", type=int, default=300, help="lifetime in seconds (default 300)")
    token.add_argument("--tenant")
    token.add_argument("--jku", help="add a jku header (must be on the client's jku_allowlist)")
    token.set_defaults(func=_cmd_token)
