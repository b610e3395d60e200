"""A schemathesis check for tests/e2e/test_contract.py, loaded as its hooks file (not a test module).

Schemathesis' `positive_data_acceptance` has to let 422 through: a schema-valid render can still be
refused by policy (a bucket that is not allowed, a host that does not resolve, a pagination cursor
this API never issued), which the document states as `INVALID_REQUEST`. This check keeps what that
allowance would lose: schema-valid data is never refused by a field rule the document does not
state (`VALIDATION_ERROR`), apart from the rules that span fields, which JSON Schema cannot say.
"""

from __future__ import annotations

import schemathesis

# Model-level rules, located at the model they belong to: a transition shorter than both scenes it joins.
CROSS_FIELD_RULES = frozenset({"timeline"})


@schemathesis.check
def valid_data_is_refused_only_by_policy(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    error = response.json()["error"]
    if error["code"] != "VALIDATION_ERROR":
        return None
    unstated = [d for d in error.get("details") or [] if d.get("field") not in CROSS_FIELD_RULES]
    if unstated:
        raise AssertionError(
            f"schema-valid data refused by a rule the document does not state: {error['message']} ({unstated})"
        )
    return None
