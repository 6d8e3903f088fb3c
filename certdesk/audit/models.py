"""Append-only, hash-chained audit log.

Each record stores the hash of the record before it and the SHA-256 of its own
canonical content plus that previous hash, so altering, reordering or deleting
any record breaks the chain (`manage.py audit_verify`). `AuditChainHead` is a
single row holding the last sequence number and hash; appending locks it, which
serialises writers and lets deleting the newest record be detected too.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class AuditChainHead(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class AuditRecord(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name = "审计记录"
        verbose_name_plural = "审计记录"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError("audit records are append-only")
