"""``flask --app wsgi pacs ...``: commands that scripts and hospital IT rely on."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from app.services import audit, tenants, users
from app.services.audit import Actor
from app.services.errors import DomainError

pacs = AppGroup("pacs", help="Cloud PACS administration.")
CLI = Actor("cli", "system")


def _fail(exc: DomainError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(1)


@pacs.command("create-tenant")
@click.option("--code", required=True, help="Institution code, e.g. HOSP1.")
@click.option("--name", required=True, help="Institution name.")
@click.option("--ae", "ae_title", required=True, help="Called AE title of the DICOM node.")
def create_tenant(code: str, name: str, ae_title: str) -> None:
    """Create an approved institution, ready to receive DICOM."""
    try:
        tenant = tenants.register(code, name, ae_title, actor=CLI, approve=True)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created institution {tenant.code} (AE {ae_title})")


@pacs.command("create-user")
@click.option("--tenant", "tenant_code", default="", help="Institution code (none for platform-admin).")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True)
@click.option("--name", "display_name", default="")
def create_user(tenant_code: str, username: str, password: str, role: str, display_name: str) -> None:
    """Create a user with a role."""
    try:
        tenant = tenants.by_code(tenant_code) if tenant_code else None
        users.create(tenant, username, password, role, display_name, actor=CLI)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created user {username} ({role})")


@pacs.command("create-token")
@click.option("--tenant", "tenant_code", required=True)
@click.option("--user", "username", required=True)
def create_token(tenant_code: str, username: str) -> None:
    """Create an API token and print only the token."""
    try:
        token = users.create_token(tenants.by_code(tenant_code), username, "cli", actor=CLI)
    except DomainError as exc:
        _fail(exc)
    click.echo(token)


@pacs.command("add-peer")
@click.option("--tenant", "tenant_code", required=True)
@click.option("--ae", "ae_title", required=True)
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--description", default="")
def add_peer(tenant_code: str, ae_title: str, host: str, port: int, description: str) -> None:
    """Register a remote DICOM AE (C-MOVE destination, allowed caller)."""
    try:
        tenants.add_peer(tenants.by_code(tenant_code), ae_title, host, port, description, CLI)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"added peer {ae_title} {host}:{port}")


@pacs.command("restrict-callers")
@click.option("--tenant", "tenant_code", required=True)
@click.option("--on/--off", "restrict", required=True,
              help="accept associations only from registered peers (--on) or from any AE (--off)")
def restrict_callers(tenant_code: str, restrict: bool) -> None:
    """Accept DICOM associations only from the institution's registered peers, or from any AE."""
    try:
        tenants.set_calling_ae_restriction(tenants.by_code(tenant_code), restrict, CLI)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"{tenant_code}: " + ("registered peers only" if restrict else "any calling AE"))


@pacs.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", "tenant_code", default="DEMO", show_default=True)
def import_files(paths: tuple[Path, ...], tenant_code: str) -> None:
    """Import DICOM files, folders and zip archives."""
    from app.services import importer

    try:
        tenant = tenants.by_code(tenant_code)
    except DomainError as exc:
        _fail(exc)
    report = importer.import_paths(tenant, list(paths), CLI)
    for item in report.failed:
        click.echo(f"failed  {item.name}: {item.error}", err=True)
    click.echo(f"stored {report.stored}, duplicates {report.duplicates}, failed {len(report.failed)}")
    if report.failed:
        sys.exit(2)


@pacs.command("load-demo")
def load_demo() -> None:
    """Create the demo institution, users and studies (idempotent)."""
    from app.demo import loader

    loader.load(echo=click.echo)


@pacs.command("dicom-node")
@click.option("--processes", type=int, default=None,
              help="Node processes sharing the port (default PACS_DICOM_PROCESSES or 1).")
def dicom_node(processes: int | None) -> None:
    """Run the DICOM node alone, in the foreground."""
    from flask import current_app

    from dicom_node import server

    app = current_app._get_current_object()
    count = processes or int(app.config["PACS_DICOM_PROCESSES"])
    if count > 1:
        from app import supervisor

        supervisor.run_node_processes(count)
    else:
        server.serve(app)


@pacs.command("serve")
def serve() -> None:
    """Run the web app (gunicorn), the DICOM node and render workers until Ctrl-C."""
    from app import supervisor

    supervisor.run()


def init_app(app: Flask) -> None:
    app.cli.add_command(pacs)


__all__ = ["init_app", "audit"]
