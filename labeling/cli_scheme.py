"""`scriptlabel scheme …` and `scriptlabel rule …`: a project's label scheme and the rules people write.

Glue only (labeling/scheme.py and labeling/label_rules.py do the work); JSON on stdout, one-line errors.
From the command line the person acts with the database file's rights, as an admin, under `cli:$USER`
in the audit log. labeling/cli.py registers both groups with its own helpers (`register`), so this module
does not import it back.
"""

from __future__ import annotations

from types import SimpleNamespace

import click


def register(cli: click.Group, helpers: SimpleNamespace) -> None:
    """Add the `scheme` and `rule` groups to `cli`; `helpers`: the CLI's ID, _cli_actor, _db, _emit, handle_errors."""
    ID, _cli_actor, _db, _emit, handle_errors = (helpers.ID, helpers.cli_actor, helpers.db, helpers.emit,
                                                helpers.handle_errors)

    def _cli_identity():
        from labeling.accounts.access import Identity

        return Identity(name=_cli_actor(), role="admin", via="cli")

    def _show(db, scheme=None) -> dict:
        from store.scheme import load_scheme, suggestions_behind

        scheme = scheme or load_scheme(db)
        return {**scheme.as_json(), "keys": scheme.keys, "full": scheme.is_full,
                "retrain_needed": suggestions_behind(db, scheme)}

    @cli.group()
    def scheme():
        """The project's label scheme: its classes, their keys, which built-in labels each merges.

        Labels stay stored as pressed: merging reads a built-in's labels as the class, un-merging
        restores them. Every change is audited."""

    @scheme.command("show")
    @click.pass_context
    @handle_errors
    def scheme_show(ctx):
        """Print the scheme as JSON: classes (name, key, display, merges, new) and the key map."""
        _emit(_show(_db(ctx, create=False)))

    @scheme.command("add")
    @click.argument("name")
    @click.option("--key", required=True, help="One lower-case letter or digit the Label page labels it with.")
    @click.option("--display", default=None, help="What the pages call it (default: the name).")
    @click.pass_context
    @handle_errors
    def scheme_add(ctx, name, key, display):
        """Add a class of the project's own (e.g. shot, super, act_break, lyrics), learned from people's labels."""
        from labeling import scheme as scheme_api

        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.add_class(db, _cli_identity(), name, key=key, display=display)))

    @scheme.command("set")
    @click.argument("name")
    @click.option("--key", default=None, help="A new key.")
    @click.option("--display", default=None, help="A new display name.")
    @click.pass_context
    @handle_errors
    def scheme_set(ctx, name, key, display):
        """Give a class another key or display name (its labels are untouched)."""
        from labeling import scheme as scheme_api

        if key is None and display is None:
            raise click.UsageError("give --key or --display")
        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.set_class(db, _cli_identity(), name, key=key, display=display)))

    @scheme.command("remove")
    @click.argument("name")
    @click.pass_context
    @handle_errors
    def scheme_remove(ctx, name):
        """Remove a class of the project's own that carries no label and no rule."""
        from labeling import scheme as scheme_api

        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.remove_class(db, _cli_identity(), name)))

    @scheme.command("merge")
    @click.argument("labels", nargs=-1, required=True)
    @click.option("--into", "into", required=True, help="The class they read as (made when new: give --key).")
    @click.option("--key", default=None, help="Key of the class when it is made by this merge.")
    @click.option("--display", default=None, help="Display name of the class when it is made by this merge.")
    @click.pass_context
    @handle_errors
    def scheme_merge(ctx, labels, into, key, display):
        """Merge built-in labels into a class: e.g. `scheme merge parenthetical --into dialogue`."""
        from labeling import scheme as scheme_api

        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.merge(db, _cli_identity(), labels, into=into, key=key, display=display)))

    @scheme.command("unmerge")
    @click.argument("labels", nargs=-1, required=True)
    @click.option("--key", default=None, help="Key for the restored class (default: its built-in key).")
    @click.pass_context
    @handle_errors
    def scheme_unmerge(ctx, labels, key):
        """Make merged built-in labels their own classes again; their labels read as themselves again."""
        from labeling import scheme as scheme_api

        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.unmerge(db, _cli_identity(), labels, key=key)))

    @scheme.command("use")
    @click.argument("preset", type=click.Choice(["full", "seed"]))
    @click.pass_context
    @handle_errors
    def scheme_use(ctx, preset):
        """Switch the built-in part to a preset: full (seven labels) or seed (S/C/D/O); own classes stay."""
        from labeling import scheme as scheme_api

        db = _db(ctx, check=True)
        _emit(_show(db, scheme_api.use_preset(db, _cli_identity(), preset)))

    @cli.group()
    def rule():
        """Rules people write: a regular expression (and optionally an indent) that suggests a class.

        A rule labels the lines it matches (source `rule`) until people's labels on them disagree with it."""

    @rule.command("add")
    @click.argument("class_name", metavar="CLASS")
    @click.option("--pattern", required=True, help="A regular expression searched in the line's text, e.g. '^(ANGLE ON|CLOSE ON)'.")
    @click.option("--indent", default=None, help="Only lines at this indent (character columns): 12, or a range 20-30.")
    @click.pass_context
    @handle_errors
    def rule_add(ctx, class_name, pattern, indent):
        """Add a rule for CLASS; prints it with its accuracy against people's labels so far."""
        from labeling import label_rules

        db = _db(ctx, check=True)
        _emit(label_rules.add_rule(db, _cli_identity(), class_name, pattern, indent=indent).as_json())

    @rule.command("list")
    @click.pass_context
    @handle_errors
    def rule_list(ctx):
        """JSON lines: every rule with its accuracy, checked lines, status (active|overruled) and matches."""
        from labeling import label_rules

        for row in label_rules.list_rules(_db(ctx, create=False)):
            _emit(row)

    @rule.command("remove")
    @click.argument("rule_id", type=ID)
    @click.pass_context
    @handle_errors
    def rule_remove(ctx, rule_id):
        """Remove a rule (its lines show the model's suggestion again); removing it twice changes nothing."""
        from labeling import label_rules

        db = _db(ctx, check=True)
        _emit(label_rules.remove_rule(db, _cli_identity(), rule_id))
