"""Reads of CA state: the issuing CA is looked up once per process and a few seconds, not per certificate."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pkitestlib import issue

from certdesk.pki import selectors
from certdesk.pki.services import HierarchyInitResult


def test_issuance_reuses_the_issuing_ca_it_looked_up(ca: HierarchyInitResult) -> None:
    issue()
    with CaptureQueriesContext(connection) as queries:
        issue()
    assert not [q for q in queries.captured_queries if "pki_certificateauthority" in q["sql"]]


def test_the_remembered_issuing_ca_expires(ca: HierarchyInitResult, monkeypatch: pytest.MonkeyPatch) -> None:
    first = selectors.ca_get_recent(role="issuing")
    assert first.pk == ca.issuing.pk
    with CaptureQueriesContext(connection) as queries:
        assert selectors.ca_get_recent(role="issuing") is first
    assert len(queries) == 0
    monkeypatch.setattr(selectors, "ISSUER_CACHE_SECONDS", 0.0)
    with CaptureQueriesContext(connection) as queries:
        again = selectors.ca_get_recent(role="issuing")
    assert again.pk == first.pk and again is not first
    assert len(queries) == 1
