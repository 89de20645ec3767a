"""The `flask pacs ...` commands that scripts and hospital IT rely on."""
from __future__ import annotations

import zipfile

import sqlalchemy as sa

from app.extensions import db
from app.models import Instance, Study, Tenant, User
from app.services import users
from tests.factory import ct_bytes


def _run(app, *args):
    return app.test_cli_runner().invoke(args=["pacs", *args])


def test_create_tenant_user_and_token(app):
    result = _run(app, "create-tenant", "--code", "H1", "--name", "第一医院", "--ae", "H1PACS")
    assert result.exit_code == 0, result.output
    tenant = db.session.execute(sa.select(Tenant).where(Tenant.code == "H1")).scalar_one()
    assert tenant.approved and [a.ae_title for a in tenant.ae_titles] == ["H1PACS"]
    result = _run(app, "create-user", "--tenant", "H1", "--username", "dr1",
                  "--password", "s3cret-pass", "--role", "radiologist")
    assert result.exit_code == 0, result.output
    result = _run(app, "create-token", "--tenant", "H1", "--user", "dr1")
    assert result.exit_code == 0
    token = result.output.strip()
    assert "\n" not in token and token.startswith("pacs_")
    assert users.user_for_token(token).username == "dr1"


def test_restrict_callers_on_and_off(app):
    _run(app, "create-tenant", "--code", "H1", "--name", "一院", "--ae", "H1PACS")
    result = _run(app, "restrict-callers", "--tenant", "H1", "--on")
    assert result.exit_code == 0 and "registered peers only" in result.output
    tenant = db.session.execute(sa.select(Tenant).where(Tenant.code == "H1")).scalar_one()
    assert tenant.restrict_calling_aes
    assert _run(app, "restrict-callers", "--tenant", "H1", "--off").exit_code == 0
    db.session.refresh(tenant)
    assert not tenant.restrict_calling_aes
    result = _run(app, "restrict-callers", "--tenant", "NOPE", "--on")
    assert result.exit_code == 1 and "not found" in result.output


def test_bad_arguments_fail_clearly(app):
    _run(app, "create-tenant", "--code", "H1", "--name", "一院", "--ae", "H1PACS")
    for args, message in [
        (("create-tenant", "--code", "H1", "--name", "x", "--ae", "OTHER"), "taken"),
        (("create-tenant", "--code", "H2", "--name", "x", "--ae", "BAD\\AE"), "AE title"),
        (("create-user", "--tenant", "H1", "--username", "u1", "--password", "short",
          "--role", "radiologist"), "8 characters"),
        (("create-user", "--tenant", "H1", "--username", "u1", "--password", "long-enough",
          "--role", "wizard"), "role must be"),
        (("create-user", "--tenant", "NOPE", "--username", "u1", "--password", "long-enough",
          "--role", "radiologist"), "not found"),
    ]:
        result = _run(app, *args)
        assert result.exit_code == 1, args
        assert message in result.output, result.output
        assert "Traceback" not in result.output
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar_one() == 0


def test_import_files_folders_and_zips(app, tmp_path):
    _run(app, "create-tenant", "--code", "H1", "--name", "一院", "--ae", "H1PACS")
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    (folder / "a.dcm").write_bytes(ct_bytes())
    (folder / "notes.txt").write_text("not dicom")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/b.dcm", ct_bytes())
        zf.writestr("../evil.dcm", ct_bytes())
    result = _run(app, "import", "--tenant", "H1", str(tmp_path / "in"), str(archive))
    assert result.exit_code == 2  # some files failed
    assert "stored 2, duplicates 0, failed 2" in result.output
    assert "notes.txt" in result.output and "evil.dcm" in result.output
    assert db.session.execute(sa.select(sa.func.count(Instance.id))).scalar_one() == 2
    again = _run(app, "import", "--tenant", "H1", str(folder / "a.dcm"))
    assert again.exit_code == 0 and "stored 0, duplicates 1" in again.output


def test_load_demo_is_idempotent(sqlite_app, monkeypatch):
    monkeypatch.setenv("PACS_DEMO_PASSWORD", "demo-password-1")
    monkeypatch.setenv("PACS_DEMO_CT_SLICES", "24")
    first = _run(sqlite_app, "load-demo")
    assert first.exit_code == 0, first.output
    studies = db.session.execute(sa.select(sa.func.count(Study.id))).scalar_one()
    instances = db.session.execute(sa.select(sa.func.count(Instance.id))).scalar_one()
    assert studies >= 4 and instances >= 24
    second = _run(sqlite_app, "load-demo")
    assert second.exit_code == 0, second.output
    assert db.session.execute(sa.select(sa.func.count(Instance.id))).scalar_one() == instances
    assert users.authenticate("doctor", "demo-password-1", "test").role == "radiologist"
