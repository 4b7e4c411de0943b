"""Reads and writes of the job stream, the result stream and the campaign hashes.

A job entry has the fields `campaign_id`, `job_id` and `contact` (JSON). A
result entry has one field, `result`: the JSON object that web's
`POST /api/v1/internal/job-results` takes in its `results` list.
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis

from email_client.chunks import Chunk
from email_client.keys import JOB_GROUP, Keys

# Appends the jobs above the campaign's highest queued job id to the job
# stream and raises that id, in one atomic step, so that a chunk offered
# twice is queued once. Job ids are compared as decimal strings without
# leading zeros, because Lua numbers lose precision above 2**53.
# NOTE: campaign hashes are never deleted. They must outlive every chunk that
# web may offer again, and web sends no message when a campaign is done.
_QUEUE_CHUNK = """
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'html', ARGV[3], 'text', ARGV[4])
local highest = redis.call('HGET', KEYS[1], 'highest_job_id') or '0'
local queued = 0
for i = 5, #ARGV, 2 do
  if greater(ARGV[i], highest) then
    redis.call('XADD', KEYS[2], '*', 'campaign_id', ARGV[1], 'job_id', ARGV[i], 'contact', ARGV[i + 1])
    highest = ARGV[i]
    queued = queued + 1
  end
end
redis.call('HSET', KEYS[1], 'highest_job_id', highest)
return queued
"""

# Acknowledges and deletes a job entry and appends its final result in one
# atomic step. When the entry was acknowledged already, because another
# consumer claimed it and finished first, nothing is written, so each job
# gets exactly one final result.
_FINISH_JOB = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'result', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class JobEntry:
    """A job read from the job stream, with the id of its stream entry."""

    entry_id: str
    campaign_id: int
    job_id: int
    contact: dict[str, Any]

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[str, str]) -> "JobEntry":
        """Parse a stream entry; raise ValueError or KeyError if it is malformed."""
        contact = json.loads(fields["contact"])
        if not isinstance(contact, dict):
            raise ValueError(f"contact is {type(contact).__name__}, not an object")
        return cls(entry_id, int(fields["campaign_id"]), int(fields["job_id"]), contact)


@dataclass(frozen=True)
class JobResult:
    """An outcome of one job, as web's job-results API takes it.

    `status` is `sent`, `failed` or `retrying`. `attempt` counts gateway
    attempts, and is 1 for a job that failed before it reached the gateway.
    """

    job_id: int
    campaign_id: int
    status: str
    attempt: int
    message_id: str | None = None
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class Queues:
    """The job and result streams and the campaign templates of one deployment."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self._redis = client
        self._keys = keys
        self._queue_chunk = client.register_script(_QUEUE_CHUNK)
        self._finish_job = client.register_script(_FINISH_JOB)

    async def queue_chunk(self, chunk: Chunk) -> int:
        """Store the chunk's template and append its new jobs; return how many were appended."""
        arguments: list[str | int] = [chunk.campaign_id, chunk.subject, chunk.html, chunk.text]
        for job in chunk.jobs:
            arguments.append(str(job.id))
            arguments.append(json.dumps(job.contact, ensure_ascii=False))
        keys = [self._keys.campaign(chunk.campaign_id), self._keys.job_stream]
        return int(await self._queue_chunk(keys=keys, args=arguments))

    async def load_template(self, campaign_id: int) -> tuple[str, str, str] | None:
        """Return the campaign's subject, html and text, or None if none is stored."""
        subject, html, text = await self._redis.hmget(self._keys.campaign(campaign_id), ["subject", "html", "text"])
        if subject is None or html is None:
            return None
        return subject, html, text or ""

    async def add_result(self, result: JobResult) -> None:
        """Append a result that does not finish its job, such as `retrying`."""
        await self._redis.xadd(self._keys.result_stream, {"result": result.to_json()})

    async def finish_job(self, entry_id: str, result: JobResult) -> bool:
        """Acknowledge and delete a job entry and append its final result, atomically.

        Returns False, writing nothing, when the entry was acknowledged before.
        """
        keys = [self._keys.job_stream, self._keys.result_stream]
        written = await self._finish_job(keys=keys, args=[JOB_GROUP, entry_id, result.to_json()])
        return bool(written)
