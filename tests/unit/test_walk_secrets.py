"""
The schema walk's messages quote the value they refuse, but never the value
of a secret-looking key (pass, secret, private, credential), at any depth:
an operator's password put in the wrong place does not end up in the
validation's output (state comments, logs, the orchestration's report).
"""

from tests.support.cluster import PREFIX, cluster_config, set_path, versions_table

PASSWORD = "hunter2-not-shown"


def _errors(rules, cfg):
    return rules.validate_config(cfg, versions_table())


def test_a_section_of_the_wrong_type_is_shown_without_its_secrets(rules):
    cfg = set_path(
        cluster_config("hardway"), "loadbalancer", [{"keepalived": {"auth_pass": PASSWORD}}]
    )
    errors = _errors(rules, cfg)
    shown = "[{'keepalived': {'auth_pass': '<secret>'}}]"
    assert f"{PREFIX}loadbalancer: expected a mapping, got list {shown}" in errors
    assert PASSWORD not in "\n".join(errors)


def test_a_list_of_entries_is_shown_without_its_secrets(rules):
    rules_value = {"apiGroups": [""], "client_secret": PASSWORD}
    cfg = set_path(cluster_config("hardway"), "rbac:cluster_role:rules", rules_value)
    errors = _errors(rules, cfg)
    assert PASSWORD not in "\n".join(errors)
    assert any("'client_secret': '<secret>'" in e for e in errors), errors
    cfg = set_path(
        cluster_config("hardway"), "rbac:cluster_role:rules", [[{"private_key": PASSWORD}]]
    )
    errors = _errors(rules, cfg)
    assert PASSWORD not in "\n".join(errors)


def test_a_leaf_under_a_secret_looking_key_says_what_is_valid_not_what_it_got(rules):
    spec = {
        "db_password": rules.schema._string,
        "admin_credential": rules.schema.port_rule,
        "plain": rules.schema.port_rule,
    }
    node = {"db_password": {"value": PASSWORD}, "admin_credential": PASSWORD, "plain": "http"}
    errors = rules.schema.Errors()
    rules.schema.walk(errors, node, spec, "", quiet_absent=False)
    assert errors == [
        f"{PREFIX}db_password: expected a string; its value is not shown",
        f"{PREFIX}admin_credential: invalid; its value is not shown; valid: an integer 1-65535",
        f"{PREFIX}plain: 'http'; valid: an integer 1-65535",
    ]


def test_a_leaf_whose_value_holds_a_secret_looking_key_is_not_shown(rules):
    errors = rules.schema.Errors()
    rules.schema.walk(
        errors, {"name": {"password": PASSWORD}}, {"name": rules.schema._string}, "", False
    )
    assert errors == [f"{PREFIX}name: expected a string; its value is not shown"]


def test_config_redaction_and_the_walk_hide_the_same_keys(rules):
    cfg = {"a": {"auth_pass": "x", "ok": 1, "nested": [{"private": "y"}]}, "secrets": {"k": "v"}}
    assert rules.redact(cfg) == {
        "a": {"auth_pass": "<secret>", "ok": 1, "nested": [{"private": "<secret>"}]},
        "secrets": {"k": "<secret>"},
    }
