"""Misuse the type checker must catch: one error on each line marked so (test_typing.py
counts them); never run."""

from __future__ import annotations

import rollback
from rollback.aws import LambdaAlias
from rollback.k8s import DaemonSet


class NotATarget:
    def current(self) -> str:
        return "1"


alias = LambdaAlias("fn", "live")
rollback.Transaction("t").add(alias, "previous")  # error: a str is no selector
rollback.Transaction("t").add(NotATarget(), rollback.Previous())  # error: no history/apply/wait
rollback.Transaction("t").add(alias, rollback.Previous(), verify=[42])  # error: not a check
rollback.Transaction("t", concurrency="8")  # error: concurrency is an int
LambdaAlias("fn")  # error: the alias is required
DaemonSet("agent").replicas()  # error: DaemonSets have no replica count
x: int = alias.current()  # error: a Revision
rollback.Policy(interval="2s")  # error: seconds or a timedelta
rollback.Exact(7.5)  # error: ids are str (or int)
rollback.Webhook("https://hooks.example.com/x", format="xml")  # error: slack or json
rollback.Transaction("t").on_success("purge")  # error: a callable or an Action
