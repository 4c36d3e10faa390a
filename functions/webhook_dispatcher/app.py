"""WebhookQueue consumer - delivers signed batch webhooks and notification emails."""

from batchops.api.workers import webhook_dispatcher_handler

lambda_handler = webhook_dispatcher_handler()
