"""Names of every Redis key and consumer group that email_client uses.

All keys start with the `redis_prefix` setting, so that several deployments
can share one Redis database.
"""

#: Consumer group of the workers that read the job stream.
JOB_GROUP = "senders"
#: Consumer group of the reporters that read the result stream.
RESULT_GROUP = "reporters"


class Keys:
    """Redis key names under one prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    @property
    def settings(self) -> str:
        """Hash of the sender and gateway settings."""
        return f"{self.prefix}settings"

    @property
    def job_stream(self) -> str:
        """Stream of jobs waiting to be sent, one entry per job."""
        return f"{self.prefix}jobs"

    @property
    def result_stream(self) -> str:
        """Stream of job results waiting to be posted to web."""
        return f"{self.prefix}results"

    def campaign(self, campaign_id: int) -> str:
        """Hash of a campaign's subject, html and text and its highest queued job id."""
        return f"{self.prefix}campaign:{campaign_id}"
