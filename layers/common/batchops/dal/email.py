"""Notification emails through Amazon SES (a batch's options.notification.email)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import clients
from batchops.errors import StorageError

EMAIL_NOT_SENT = "EMAIL_NOT_SENT"


def send_email(source: str, to: str, subject: str, text: str) -> str:
    """Send one plain-text email; return SES's MessageId.

    Any SES refusal (throttling, an unverified sender, a rejected message) becomes one typed
    error, so the service above can retry it like a 5xx without knowing botocore."""
    try:
        response = clients.client("ses").send_email(
            Source=source,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            },
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        raise StorageError(f"SES refused the email ({code}): {message}"[:500], code=EMAIL_NOT_SENT) from error
    except BotoCoreError as error:
        raise StorageError(f"SES could not be reached: {error}"[:500], code=EMAIL_NOT_SENT) from error
    return str(response["MessageId"])
