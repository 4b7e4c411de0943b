"""Names of every Redis key and consumer group that email_client uses.

All keys start with the `redis_prefix` setting, so that several deployments
can share one Redis database.
"""

#: Consumer group of the workers that read the job streams.
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
    def active_campaigns(self) -> str:
        """Set of the ids of campaigns whose job stream has entries and that are not paused."""
        return f"{self.prefix}campaigns:active"

    def job_stream(self, campaign_id: int) -> str:
        """Stream of one campaign's jobs waiting to be sent or in flight, one entry per job."""
        return f"{self.prefix}jobs:{campaign_id}"

    def parked_jobs(self, campaign_id: int) -> str:
        """List of a paused campaign's jobs that were taken from its stream and set aside."""
        return f"{self.prefix}parked:{campaign_id}"

    def campaign(self, campaign_id: int) -> str:
        """Hash of a campaign's template, status, pause reason and highest queued job id per round."""
        return f"{self.prefix}campaign:{campaign_id}"

    @property
    def result_stream(self) -> str:
        """Stream of job results and campaign events waiting to be posted to web."""
        return f"{self.prefix}results"

    @property
    def credential_refusals(self) -> str:
        """Counter of credential refusals (401, 403) in a row across all processes."""
        return f"{self.prefix}credential_refusals"

    def rate_window(self, second: int | str) -> str:
        """Counter of the gateway attempts started in one second of the Redis clock.

        The rate limiter's Lua script builds this key itself from
        `rate_window("")` and the second of Redis's TIME.
        """
        return f"{self.prefix}rate:{second}"

    def request_nonce(self, nonce: str) -> str:
        """Marker of a signed request's nonce, kept until the request would be too old anyway, to reject replays."""
        return f"{self.prefix}nonce:{nonce}"
