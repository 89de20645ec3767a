"""Cloud PACS web application: the Flask application factory."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from app import config, database
from app.extensions import babel, csrf, db, login_manager, migrate

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app; ``test_config`` overrides settings read from the environment."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from app import models  # noqa: F401  (registers tables for migrations)

    database.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)

    from app.web import errors, filters, i18n, security

    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    filters.init_app(app)

    from app.web import auth, studies, admin
    from app.dicomweb import routes as dicomweb

    app.register_blueprint(auth.bp)
    app.register_blueprint(studies.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(dicomweb.bp)
    from app.web import frames  # viewer frames (render farm)
    app.register_blueprint(frames.bp)
    from app.web import viewer  # the 2-D image viewer
    app.register_blueprint(viewer.bp)
    from app.web import views3d, volume_frames  # MPR, volume rendering, fusion, DSA
    app.register_blueprint(views3d.bp)
    app.register_blueprint(volume_frames.bp)
    csrf.exempt(dicomweb.bp)  # token API; session-authenticated writes check CSRF there

    from app import cli

    cli.init_app(app)
    return app
