"""Reads and writes of the job streams, the result stream and the campaign hashes.

Each campaign has its own job stream, so that workers can read several
campaigns side by side. The set of active campaigns names the streams to
read. A job entry has the fields `campaign_id`, `job_id` and `contact` (JSON).
A result entry has one field: `result`, the JSON object that web's
`POST /api/v1/internal/job-results` takes in its `results` list, or `event`,
an object of its `events` list.
"""

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis

from email_client.chunks import Chunk
from email_client.keys import JOB_GROUP, Keys

# Appends the jobs above the highest job id queued in the chunk's round to
# the campaign's stream and raises that id, in one atomic step, so that a
# chunk offered twice is queued once. Returns how many jobs were appended
# and the campaign's backlog. Job ids are compared as decimal strings
# without leading zeros, because Lua numbers lose precision above 2**53. A
# cancelled campaign takes no jobs. A paused one keeps its new jobs in the
# stream but stays out of the active set until it is resumed.
# The backlog counts entries not yet delivered to a worker (stream length
# minus pending entries) and the jobs set aside while paused.
# NOTE: campaign hashes and streams are never deleted. They must outlive
# every chunk that web may offer again, and web sends no message when a
# campaign is done.
_QUEUE_CHUNK = """
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local status = redis.call('HGET', KEYS[1], 'status')
local queued = 0
if status ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'subject', ARGV[3], 'html', ARGV[4], 'text', ARGV[5])
  redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[6], '0', 'MKSTREAM')
  local field = 'highest_job_id:' .. ARGV[2]
  local highest = redis.call('HGET', KEYS[1], field) or '0'
  for i = 7, #ARGV, 2 do
    if greater(ARGV[i], highest) then
      redis.call('XADD', KEYS[2], '*', 'campaign_id', ARGV[1], 'job_id', ARGV[i], 'contact', ARGV[i + 1])
      highest = ARGV[i]
      queued = queued + 1
    end
  end
  redis.call('HSET', KEYS[1], field, highest)
  if status ~= 'paused' and redis.call('XLEN', KEYS[2]) > 0 then
    redis.call('SADD', KEYS[3], ARGV[1])
  end
end
local backlog = redis.call('LLEN', KEYS[4])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local pending = redis.call('XPENDING', KEYS[2], ARGV[6])[1]
  backlog = backlog + math.max(0, redis.call('XLEN', KEYS[2]) - pending)
end
return {queued, backlog}
"""

# Acknowledges and deletes job entries and appends their final results in
# one atomic step. An entry that was acknowledged already, because another
# consumer claimed it and finished first, gets no result, so each job gets
# exactly one final result. An accepted send ends a run of credential
# refusals even then, because the gateway did take the credentials.
# KEYS: result stream, active set, refusal count, then the job streams.
# ARGV: the group, then five values per job: the position of its stream in
# KEYS, its entry id, its result, its campaign id, and '1' if it was sent.
# Returns 1 or 0 per job: whether its result was written.
_FINISH_JOBS = """
local written = {}
for i = 2, #ARGV, 5 do
  local stream = KEYS[tonumber(ARGV[i])]
  if ARGV[i + 4] == '1' then
    redis.call('DEL', KEYS[3])
  end
  if redis.call('XACK', stream, ARGV[1], ARGV[i + 1]) == 1 then
    redis.call('XDEL', stream, ARGV[i + 1])
    redis.call('XADD', KEYS[1], '*', 'result', ARGV[i + 2])
    if redis.call('XLEN', stream) == 0 then
      redis.call('SREM', KEYS[2], ARGV[i + 3])
    end
    table.insert(written, 1)
  else
    table.insert(written, 0)
  end
end
return written
"""


@dataclass(frozen=True)
class JobEntry:
    """A job read from its campaign's job stream, with the id of its stream entry."""

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


@dataclass(frozen=True)
class QueuedChunk:
    """Outcome of queueing a chunk: the jobs appended, and the campaign's jobs queued and not yet taken."""

    queued: int
    backlog: int


class Queues:
    """The job and result streams and the campaign templates of one deployment."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self._redis = client
        self._keys = keys
        self._queue_chunk = client.register_script(_QUEUE_CHUNK)
        self._finish_jobs = client.register_script(_FINISH_JOBS)

    async def queue_chunk(self, chunk: Chunk) -> QueuedChunk:
        """Store the chunk's template and append the jobs not queued before in its round."""
        arguments: list[str | int] = [
            chunk.campaign_id, chunk.round, chunk.subject, chunk.html, chunk.text, JOB_GROUP,
        ]
        for job in chunk.jobs:
            arguments.append(str(job.id))
            arguments.append(json.dumps(job.contact, ensure_ascii=False))
        keys = [
            self._keys.campaign(chunk.campaign_id),
            self._keys.job_stream(chunk.campaign_id),
            self._keys.active_campaigns,
            self._keys.parked_jobs(chunk.campaign_id),
        ]
        queued, backlog = await self._queue_chunk(keys=keys, args=arguments)
        return QueuedChunk(int(queued), int(backlog))

    async def active_campaign_ids(self) -> list[int]:
        """Return the ids of the campaigns whose jobs workers should read, in ascending order."""
        return sorted(int(campaign_id) for campaign_id in await self._redis.smembers(self._keys.active_campaigns))

    async def load_template(self, campaign_id: int) -> tuple[str, str, str] | None:
        """Return the campaign's subject, html and text, or None if none is stored."""
        subject, html, text = await self._redis.hmget(self._keys.campaign(campaign_id), ["subject", "html", "text"])
        if subject is None or html is None:
            return None
        return subject, html, text or ""

    async def add_result(self, result: JobResult) -> None:
        """Append a result that does not finish its job, such as `retrying`."""
        await self._redis.xadd(self._keys.result_stream, {"result": result.to_json()})

    async def finish_jobs(self, finished: list[tuple[JobEntry, JobResult]]) -> list[bool]:
        """Acknowledge and delete job entries and append their final results, atomically.

        A `sent` result also resets the count of credential refusals in a row.
        Returns, per job, whether its result was written: False when its
        entry was acknowledged before.
        """
        keys = [self._keys.result_stream, self._keys.active_campaigns, self._keys.credential_refusals]
        positions: dict[int, int] = {}
        arguments: list[str | int] = [JOB_GROUP]
        for job, result in finished:
            if job.campaign_id not in positions:
                keys.append(self._keys.job_stream(job.campaign_id))
                # Lua counts from 1.
                positions[job.campaign_id] = len(keys)
            accepted = "1" if result.status == "sent" else "0"
            arguments += [positions[job.campaign_id], job.entry_id, result.to_json(), job.campaign_id, accepted]
        written = await self._finish_jobs(keys=keys, args=arguments)
        return [bool(flag) for flag in written]
