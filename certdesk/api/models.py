"""What the agent API keeps of its own: failed session openings, to slow down code guessing."""

from django.db import models


class SessionOpenFailure(models.Model):
    """One refused `POST sessions` from an address. Counted per address over a sliding window;
    rows older than the window are pruned as new ones arrive."""

    ip = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["ip", "created_at"], name="api_open_failure_ip_time")]
