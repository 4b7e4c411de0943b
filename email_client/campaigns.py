"""Campaign status in Redis: pause, resume and cancel, and setting jobs aside.

A campaign's status is `sending` (also when none is stored), `paused` or
`cancelled`. A paused campaign leaves the active set, so workers stop reading
its stream; its jobs not yet delivered stay in the stream. A job that a
worker took before it noticed the pause is set aside: moved to the
campaign's parked list in the same atomic step that acknowledges its stream
entry. Resuming moves the parked jobs back into the stream. Cancelling drops
the jobs not yet delivered and the parked ones. A job in flight still gets
its result, and a delivered job that was not started is dropped when a
worker takes it up.

Credential refusals in a row are counted here too, because reaching
`pause_after_refusals` pauses a campaign.
"""

import json
import logging

import redis.asyncio as redis

from email_client.keys import JOB_GROUP, Keys

log = logging.getLogger(__name__)

SENDING = "sending"
PAUSED = "paused"
CANCELLED = "cancelled"

# Acknowledges and deletes one job entry, and appends the job to the parked
# list when `keep` is true. Does nothing when the entry was acknowledged
# already, such as by a consumer that claimed it, so a job is never parked
# twice.
_SET_ASIDE_FUNCTION = """
local function set_aside(stream, parked, active, group, entry_id, campaign_id, keep)
  local entries = redis.call('XRANGE', stream, entry_id, entry_id)
  if redis.call('XACK', stream, group, entry_id) == 0 then
    return 0
  end
  redis.call('XDEL', stream, entry_id)
  if keep and #entries > 0 then
    local job = {}
    local fields = entries[1][2]
    for i = 1, #fields, 2 do
      job[fields[i]] = fields[i + 1]
    end
    redis.call('RPUSH', parked, cjson.encode({job_id = job['job_id'], contact = job['contact']}))
  end
  if redis.call('XLEN', stream) == 0 then
    redis.call('SREM', active, campaign_id)
  end
  return 1
end
"""

# Returns the campaign's status; when it is paused or cancelled, also sets
# the jobs aside (parked or dropped).
_SET_ASIDE_UNLESS_SENDING = _SET_ASIDE_FUNCTION + """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'paused' or status == 'cancelled' then
  for i = 3, #ARGV do
    set_aside(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[i], ARGV[2], status == 'paused')
  end
  return status
end
return 'sending'
"""

# Pauses the campaign unless it is cancelled, keeping the first reason. On
# the change to paused, appends the event (if any) to the result stream.
# Sets the job entry (if any) aside. Returns {status, 1 if it changed}.
_PAUSE = _SET_ASIDE_FUNCTION + """
local status = redis.call('HGET', KEYS[1], 'status')
local changed = 0
if status ~= 'cancelled' and status ~= 'paused' then
  redis.call('HSET', KEYS[1], 'status', 'paused')
  if ARGV[2] ~= '' then
    redis.call('HSET', KEYS[1], 'pause_reason', ARGV[2])
  end
  redis.call('SREM', KEYS[2], ARGV[1])
  if ARGV[3] ~= '' then
    redis.call('XADD', KEYS[3], '*', 'event', ARGV[3])
  end
  status = 'paused'
  changed = 1
end
if ARGV[5] ~= '' then
  set_aside(KEYS[4], KEYS[5], KEYS[2], ARGV[4], ARGV[5], ARGV[1], status == 'paused')
end
return {status, changed}
"""

# Moves the parked jobs back into the stream and makes the campaign active,
# unless it is cancelled. Resets the credential refusal count, so that the
# first refusal after a resume does not pause the campaign again at once.
# Returns {status, number of jobs queued again}.
_RESUME = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'cancelled' then
  return {status, 0}
end
redis.call('HSET', KEYS[1], 'status', 'sending')
redis.call('HDEL', KEYS[1], 'pause_reason')
local parked = redis.call('LRANGE', KEYS[3], 0, -1)
if #parked > 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
end
for _, item in ipairs(parked) do
  local job = cjson.decode(item)
  redis.call('XADD', KEYS[2], '*', 'campaign_id', ARGV[1], 'job_id', job['job_id'], 'contact', job['contact'])
end
redis.call('DEL', KEYS[3])
if redis.call('XLEN', KEYS[2]) > 0 then
  redis.call('SADD', KEYS[4], ARGV[1])
end
redis.call('DEL', KEYS[5])
return {'sending', #parked}
"""

# Marks the campaign cancelled and deletes the parked jobs and the stream
# entries after the group's last delivered id, which no worker has taken.
# Delivered entries stay: a job in flight finishes with its result, and a
# worker drops any other when it takes it up. Returns the number dropped.
_CANCEL = """
redis.call('HSET', KEYS[1], 'status', 'cancelled')
redis.call('HDEL', KEYS[1], 'pause_reason')
local dropped = redis.call('LLEN', KEYS[3])
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local last_delivered = '0-0'
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[2])) do
    local info = {}
    for i = 1, #group, 2 do
      info[group[i]] = group[i + 1]
    end
    if info['name'] == ARGV[2] then
      last_delivered = info['last-delivered-id']
    end
  end
  local undelivered = redis.call('XRANGE', KEYS[2], '(' .. last_delivered, '+')
  for i = 1, #undelivered, 500 do
    local ids = {}
    for j = i, math.min(i + 499, #undelivered) do
      table.insert(ids, undelivered[j][1])
    end
    redis.call('XDEL', KEYS[2], unpack(ids))
  end
  dropped = dropped + #undelivered
end
if redis.call('XLEN', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[4], ARGV[1])
end
return dropped
"""


class CampaignCancelled(Exception):
    """Error raised on pausing or resuming a cancelled campaign, which stays cancelled."""

    def __init__(self, campaign_id: int):
        super().__init__(f"campaign {campaign_id} is cancelled; a cancelled campaign cannot be paused or resumed")
        self.campaign_id = campaign_id


class Campaigns:
    """Status changes of campaigns and the credential refusal count, on one Redis."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self._redis = client
        self._keys = keys
        self._set_aside_unless_sending = client.register_script(_SET_ASIDE_UNLESS_SENDING)
        self._pause = client.register_script(_PAUSE)
        self._resume = client.register_script(_RESUME)
        self._cancel = client.register_script(_CANCEL)

    async def pause(self, campaign_id: int, reason: str = "", entry_id: str = "", event: bool = False) -> bool:
        """Pause the campaign; set job entry `entry_id` aside when one is given.

        With `event`, a `paused` event with `reason` goes to web through the
        result stream when this call paused the campaign. Returns whether it
        did. Raises CampaignCancelled for a cancelled campaign, after dropping
        the job entry, if any.
        """
        event_json = ""
        if event:
            event_json = json.dumps({"campaign_id": campaign_id, "event": PAUSED, "reason": reason}, ensure_ascii=False)
        keys = [
            self._keys.campaign(campaign_id),
            self._keys.active_campaigns,
            self._keys.result_stream,
            self._keys.job_stream(campaign_id),
            self._keys.parked_jobs(campaign_id),
        ]
        status, changed = await self._pause(keys=keys, args=[campaign_id, reason, event_json, JOB_GROUP, entry_id])
        if status == CANCELLED:
            raise CampaignCancelled(campaign_id)
        # The caller logs a pause for an event, with what the user should do about it.
        if changed and not event:
            log.info("campaign %d paused: %s", campaign_id, reason or "no reason given")
        return bool(changed)

    async def resume(self, campaign_id: int) -> int:
        """Resume the campaign and return how many parked jobs were queued again.

        Raises CampaignCancelled for a cancelled campaign.
        """
        keys = [
            self._keys.campaign(campaign_id),
            self._keys.job_stream(campaign_id),
            self._keys.parked_jobs(campaign_id),
            self._keys.active_campaigns,
            self._keys.credential_refusals,
        ]
        status, queued_again = await self._resume(keys=keys, args=[campaign_id, JOB_GROUP])
        if status == CANCELLED:
            raise CampaignCancelled(campaign_id)
        log.info("campaign %d resumed; %d jobs that were set aside are queued again", campaign_id, queued_again)
        return int(queued_again)

    async def cancel(self, campaign_id: int) -> int:
        """Cancel the campaign and return how many queued and parked jobs were dropped."""
        keys = [
            self._keys.campaign(campaign_id),
            self._keys.job_stream(campaign_id),
            self._keys.parked_jobs(campaign_id),
            self._keys.active_campaigns,
        ]
        dropped = int(await self._cancel(keys=keys, args=[campaign_id, JOB_GROUP]))
        log.info("campaign %d cancelled; %d queued jobs dropped", campaign_id, dropped)
        return dropped

    async def set_aside_unless_sending(self, campaign_id: int, entry_ids: list[str]) -> str:
        """Return the campaign's status; unless it is `sending`, park or drop the campaign's job entries first."""
        keys = [
            self._keys.campaign(campaign_id),
            self._keys.job_stream(campaign_id),
            self._keys.parked_jobs(campaign_id),
            self._keys.active_campaigns,
        ]
        return await self._set_aside_unless_sending(keys=keys, args=[JOB_GROUP, campaign_id, *entry_ids])

    async def count_credential_refusal(self) -> int:
        """Count one more credential refusal and return how many came in a row, across all processes."""
        return int(await self._redis.incr(self._keys.credential_refusals))
