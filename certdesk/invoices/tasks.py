from django_tasks import task

from certdesk.invoices.models import Invoice, InvoiceStatus
from certdesk.invoices.services import invoice_issue


@task()
def invoice_issue_task(*, invoice_id: int) -> str:
    invoice = Invoice.objects.select_related("order__certificate_type").get(pk=invoice_id)
    return invoice_issue(invoice=invoice).status


@task()
def invoices_retry_task() -> int:
    """Invoices whose provider call failed or never ran (a worker died) get another go."""
    retried = 0
    for invoice_id in Invoice.objects.exclude(status=InvoiceStatus.ISSUED).values_list("pk", flat=True)[:100]:
        invoice_issue_task.enqueue(invoice_id=invoice_id)
        retried += 1
    return retried
