"""The intake's credentials: `okrflow tokens create|list|revoke` and `okrflow webhooks
set-secret` (okrflow.intake.credentials)."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from okrflow.cli.subcommands import Subcommands
from okrflow.exitcodes import ExitCode
from okrflow.failures import one_line
from okrflow.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


def register_tokens(sub: Subcommands) -> None:
    tokens = sub.add_parser("tokens", help="API tokens shops send events with (HTTP intake)")
    actions = tokens.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="create, list or revoke"
    )
    create = actions.add_parser(
        "create", help="create a token for a shop; it is printed once, on the last line"
    )
    create.add_argument("--shop", required=True, help="the shop the token sends for")
    create.add_argument("--name", help="what the token is for, e.g. 'checkout'")
    listing = actions.add_parser("list", help="tokens and their state, never a token")
    listing.add_argument("--shop", help="only this shop's tokens")
    revoke = actions.add_parser(
        "revoke", help="revoke a token by id: refused within the intake's cache time"
    )
    revoke.add_argument("id", help="the token's id (see `okrflow tokens list`)")
    revoke.set_defaults(shop=None)
    tokens.set_defaults(run=cmd_tokens)


def register_webhooks(sub: Subcommands) -> None:
    webhooks = sub.add_parser("webhooks", help="secrets platforms sign a shop's webhooks with")
    actions = webhooks.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="set-secret"
    )
    set_secret = actions.add_parser(
        "set-secret", help="store a shop's webhook secret for a platform, read from stdin"
    )
    set_secret.add_argument("--shop", required=True, help="the shop the webhooks are for")
    set_secret.add_argument("--platform", required=True, help="shopify or stripe")
    webhooks.set_defaults(run=cmd_webhooks)


def _credentials_store(
    settings: Settings, args: argparse.Namespace, where: str, read_only: bool = False
) -> int:
    """Open the database (upgrading an empty one; `read_only`: an existing one, unchanged)
    and run `args.store_action` on it; the database's errors are one line."""
    # lazy: SQLAlchemy and Alembic add 0.20 s to every okrflow start (okrflow --help too)
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    from okrflow.readonly import open_for_reading
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import SchemaOutdated, ensure_schema

    try:
        if read_only:
            engine = open_for_reading(settings.database_url)
        else:
            engine = make_engine(settings.database_url, writer=True)
            ensure_schema(engine)
        code: int = args.store_action(engine)
    except SchemaOutdated as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return ExitCode.SCHEMA_MISMATCH
    except (DBAPIError, ArgumentError, NoSuchModuleError) as exc:  # cannot connect, bad URL
        print(f"{where}: database error: {one_line(exc)}", file=sys.stderr)
        return ExitCode.DATABASE_UNREACHABLE
    except SQLAlchemyError as exc:
        print(f"{where}: database error: {one_line(exc)}", file=sys.stderr)
        return ExitCode.FAILED
    return code


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_tokens(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy and msgspec add 0.26 s to every okrflow start (okrflow --help too)
    from okrflow.intake import credentials

    where = f"okrflow tokens {args.action}"
    # Arguments are checked before the database is opened: a typo creates no database.
    try:
        if args.shop is not None:
            credentials.check_shop(args.shop)
        if args.action == "create":
            credentials.check_name(args.name)
        token_id = 0
        if args.action == "revoke":
            if not (args.id.isascii() and args.id.isdigit()) or int(args.id) >= 2**31:
                raise ValueError(f"token id {args.id!r}: not a token id (see `tokens list`)")
            token_id = int(args.id)
    except ValueError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return ExitCode.USAGE

    def create(engine: Engine) -> int:
        new_id, token = credentials.create_token(engine, args.shop, args.name, datetime.now(UTC))
        print(f"token {new_id}, shop {args.shop}, name {args.name or '-'}: "
              "shown once; store it now")  # fmt: skip
        print(token)  # alone on the last line, for scripts
        return ExitCode.OK

    def list_(engine: Engine) -> int:
        rows = credentials.list_tokens(engine, args.shop)
        for row in rows:
            state = "active" if row.revoked_at is None else f"revoked {_utc_text(row.revoked_at)}"
            print(f"{row.id}\t{row.shop}\t{row.name or '-'}\t"
                  f"created {_utc_text(row.created_at)}\t{state}")  # fmt: skip
        if not rows:
            print(f"{where}: no tokens" + (f" for shop {args.shop}" if args.shop else ""),
                  file=sys.stderr)  # fmt: skip
        return ExitCode.OK

    def revoke(engine: Engine) -> int:
        if not credentials.revoke_token(engine, token_id, datetime.now(UTC)):
            print(f"{where}: no active token {token_id} (unknown or already revoked)",
                  file=sys.stderr)  # fmt: skip
            return ExitCode.USAGE
        print(f"token {token_id} revoked")
        return ExitCode.OK

    args.store_action = {"create": create, "list": list_, "revoke": revoke}[args.action]
    return _credentials_store(settings, args, where, read_only=args.action == "list")


def _read_secret() -> str:
    """The secret from stdin, without its trailing line break; typed without echo on a
    terminal. ValueError if it is not UTF-8 or implausibly long."""
    if sys.stdin.isatty():
        try:
            return getpass.getpass("webhook secret (not echoed): ")
        except EOFError:
            return ""
    limit = 64 * 1024
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the secret is longer than {limit} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"the secret is not UTF-8 text: {exc.reason}") from None
    text = text.removesuffix("\n")
    return text.removesuffix("\r")


def cmd_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy and msgspec add 0.26 s to every okrflow start (okrflow --help too)
    from okrflow.intake import credentials

    where = f"okrflow webhooks {args.action}"
    try:
        credentials.check_shop(args.shop)
        credentials.check_platform(args.platform)
        secret = _read_secret()
        credentials.check_secret(secret)
    except ValueError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return ExitCode.USAGE

    def set_secret(engine: Engine) -> int:
        credentials.set_webhook_secret(engine, args.shop, args.platform, secret, datetime.now(UTC))
        print(f"webhook secret stored for shop {args.shop}, platform {args.platform}")
        return ExitCode.OK

    args.store_action = set_secret
    return _credentials_store(settings, args, where)
