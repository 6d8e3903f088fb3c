from django.conf import settings
from django.db import models

from certdesk.orders.models import Order


class ReviewClaim(models.Model):
    """A reviewer working on an order; others see it taken until the claim lapses."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="review_claim")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    claimed_at = models.DateTimeField()
