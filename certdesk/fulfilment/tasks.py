from django_tasks import task

from certdesk.fulfilment.services import shipments_auto_complete


@task()
def shipments_auto_complete_task() -> int:
    return shipments_auto_complete()
