"""Browser-facing blueprints (htmx + server-side Jinja)."""
