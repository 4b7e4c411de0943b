"""Campaigns in web: creating, sending once, handing jobs over in chunks, recording results."""

import asyncio
import json

import aiohttp
import psycopg2
import pytest
import tornado.web

from common import signing
from tests.conftest import COOKIE_SECRET, ApiClient, create_api_token
from tests.processes import free_port
from tests.service_secrets import SERVICE_SECRET, signed_headers, web_secrets
from web.app import WebService
from web.config import load_config


def signed_by_web(handler: tornado.web.RequestHandler) -> bool:
    """Return whether the request carries a valid signature; else answer 401, as email_client does."""
    request = handler.request
    try:
        signing.check(SERVICE_SECRET.encode(), request.method, request.uri, request.body, request.headers)
    except signing.SignatureError as error:
        handler.set_status(401)
        handler.finish({"error": str(error)})
        return False
    return True


class FakeEmailClient:
    """Stands in for email_client's chunk endpoint: records each chunk, or answers 503 while `down`.

    Like email_client, it answers 401 to a request that web did not sign.
    """

    def __init__(self):
        self.chunks: list[dict] = []
        self.actions: list[tuple[int, str]] = []
        self.down = False
        self.backlog = 0
        fake = self

        class ChunkHandler(tornado.web.RequestHandler):
            def post(self, campaign_id):
                if not signed_by_web(self):
                    return
                if fake.down:
                    self.set_status(503)
                    return
                chunk = json.loads(self.request.body)
                assert chunk["campaign"]["id"] == int(campaign_id)
                fake.chunks.append(chunk)
                self.set_status(202)
                self.write({"queued": len(chunk["jobs"]), "ignored": 0, "backlog": fake.backlog})

        class ActionHandler(tornado.web.RequestHandler):
            def post(self, campaign_id, action):
                if not signed_by_web(self):
                    return
                if fake.down:
                    self.set_status(503)
                    return
                fake.actions.append((int(campaign_id), action))
                self.write({"status": action})

        self.port = free_port()
        self.server = tornado.web.Application([
            (r"/api/v1/campaigns/([0-9]+)/jobs", ChunkHandler),
            (r"/api/v1/campaigns/([0-9]+)/(pause|resume|cancel)", ActionHandler),
        ]).listen(self.port, address="127.0.0.1")

    def job_ids(self) -> list[int]:
        return [job["id"] for chunk in self.chunks for job in chunk["jobs"]]

    def jobs(self) -> list[dict]:
        return [job for chunk in self.chunks for job in chunk["jobs"]]


@pytest.fixture
async def fake_email_client():
    fake = FakeEmailClient()
    yield fake
    fake.server.stop()


@pytest.fixture
async def campaign_api(database_url, fake_email_client):
    port = free_port()
    config = load_config({
        "DATABASE_URL": database_url, "WEB_PORT": str(port),
        "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{fake_email_client.port}",
        "WEB_DISPATCH_CHUNK_SIZE": "40",
        "WEB_COOKIE_SECRET": COOKIE_SECRET,
        **web_secrets(),
    })
    service = WebService(config)
    await service.start()
    token = await create_api_token(service)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield ApiClient(f"http://127.0.0.1:{port}", session)
    await service.stop()


async def draft(api, contacts: int = 100, subject: str = "Hello {{ first_name }}") -> dict:
    _, segment = await api.post("/api/v1/segments", json={"name": "All"})
    lines = "email,first_name\n" + "".join(f"c{number}@example.com,Name{number}\n" for number in range(contacts))
    status, report = await api.post(f"/api/v1/contacts/import?segment_id={segment['id']}", data=lines.encode(),
                                    headers={"Content-Type": "text/csv"})
    assert status == 200, report
    _, template = await api.post("/api/v1/templates", json={"name": "T", "html": "<p>Hi {{ first_name }}</p>"})
    status, campaign = await api.post("/api/v1/campaigns", json={
        "name": "Spring", "segment_id": segment["id"], "template_id": template["id"], "subject": subject})
    assert status == 201, campaign
    return campaign


async def report(api: ApiClient, body) -> tuple[int, dict]:
    """Post job results to web, signed as email_client signs them; return the status and the answer."""
    path = "/api/v1/internal/job-results"
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **signed_headers("POST", api.base_url + path, data)}
    return await api.post(path, data=data, headers=headers)


async def wait_for(predicate, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_send_hands_every_job_over_once_in_chunks(campaign_api, fake_email_client):
    campaign = await draft(campaign_api, contacts=100)
    status, sent = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 202
    assert sent["status"] == "sending"
    assert sent["jobs_total"] == 100
    assert sent["counts"]["pending"] == 100

    async def all_handed_over():
        return len(fake_email_client.job_ids()) >= 100

    await wait_for(all_handed_over)
    ids = fake_email_client.job_ids()
    assert len(ids) == len(set(ids)) == 100
    assert max(len(chunk["jobs"]) for chunk in fake_email_client.chunks) <= 40
    first = fake_email_client.chunks[0]
    assert first["campaign"]["subject"] == "Hello {{ first_name }}"
    assert first["campaign"]["html"] == "<p>Hi {{ first_name }}</p>"
    assert first["jobs"][0]["contact"]["email"] == "c0@example.com"
    assert first["jobs"][0]["contact"]["first_name"] == "Name0"

    status, body = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 409
    assert "sent only once" in body["error"]


async def test_hand_over_resumes_when_email_client_returns(campaign_api, fake_email_client):
    fake_email_client.down = True
    campaign = await draft(campaign_api, contacts=50)
    status, _ = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 202
    await asyncio.sleep(1.5)
    assert fake_email_client.job_ids() == []
    fake_email_client.down = False

    async def all_handed_over():
        return len(fake_email_client.job_ids()) == 50

    await wait_for(all_handed_over)


async def test_results_finish_campaign_with_one_outcome_per_job(campaign_api, fake_email_client):
    campaign = await draft(campaign_api, contacts=10)
    await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    _, jobs = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?limit=100")
    ids = [job["id"] for job in jobs["items"]]
    assert len(ids) == 10

    results = [{"job_id": ids[0], "campaign_id": campaign["id"], "status": "retrying", "attempt": 1,
                "error": "gateway answered 500"}]
    results += [{"job_id": job_id, "campaign_id": campaign["id"], "status": "sent", "attempt": 1,
                 "message_id": f"msg-{job_id}"} for job_id in ids[1:9]]
    status, body = await report(campaign_api, {"results": results})
    assert status == 200
    assert body["updated"] == 9
    _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert current["counts"] == {"pending": 1, "retrying": 1, "sent": 8, "failed": 0, "cancelled": 0}
    assert current["status"] == "sending"

    final = [
        {"job_id": ids[0], "campaign_id": campaign["id"], "status": "sent", "attempt": 2, "message_id": "late"},
        {"job_id": ids[9], "campaign_id": campaign["id"], "status": "retrying", "attempt": 1},
        {"job_id": ids[9], "campaign_id": campaign["id"], "status": "failed", "attempt": 2, "error": "rejected"},
    ]
    await report(campaign_api, {"results": final})
    _, done = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert done["counts"] == {"pending": 0, "retrying": 0, "sent": 9, "failed": 1, "cancelled": 0}
    assert done["status"] == "finished"

    # A late or repeated result never changes an outcome.
    late = [{"job_id": ids[9], "campaign_id": campaign["id"], "status": "sent", "attempt": 3, "message_id": "x"}]
    _, body = await report(campaign_api, {"results": late})
    assert body["updated"] == 0
    _, failed = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?status=failed")
    assert [(job["id"], job["error"], job["attempts"]) for job in failed["items"]] == [(ids[9], "rejected", 2)]


@pytest.mark.parametrize("payload, words", [
    ({"results": "x"}, "must be a list"),
    ({"results": [{"job_id": 1, "campaign_id": 1, "status": "lost"}]}, "status"),
    ({"results": [{"job_id": -1, "campaign_id": 1, "status": "sent"}]}, "job_id"),
])
async def test_bad_results_rejected(campaign_api, payload, words):
    status, body = await report(campaign_api, payload)
    assert status == 400
    assert words in body["error"]


async def test_campaign_bad_input(campaign_api):
    campaign = await draft(campaign_api, contacts=1)
    base = {"name": "X", "segment_id": campaign["segment_id"], "template_id": campaign["template_id"],
            "subject": "Hi"}
    cases = [
        ({**base, "segment_id": 999}, 404, "segment 999 not found"),
        ({**base, "template_id": 999}, 404, "template 999 not found"),
        ({**base, "subject": "{{ unclosed"}, 400, "subject"),
        ({**base, "subject": ""}, 400, "subject"),
        ({key: value for key, value in base.items() if key != "segment_id"}, 400, "segment_id is required"),
    ]
    for payload, expected_status, words in cases:
        status, body = await campaign_api.post("/api/v1/campaigns", json=payload)
        assert status == expected_status, payload
        assert words in body["error"], body
    _, listing = await campaign_api.get("/api/v1/campaigns")
    assert len(listing["items"]) == 1

    status, body = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?status=lost")
    assert status == 400
    status, body = await campaign_api.post("/api/v1/campaigns/999/send")
    assert status == 404


async def test_send_empty_segment_refused(campaign_api):
    _, segment = await campaign_api.post("/api/v1/segments", json={"name": "Empty"})
    _, template = await campaign_api.post("/api/v1/templates", json={"name": "T", "html": "<p>x</p>"})
    _, campaign = await campaign_api.post("/api/v1/campaigns", json={
        "name": "C", "segment_id": segment["id"], "template_id": template["id"], "subject": "S"})
    status, body = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    assert status == 400
    assert "no contacts" in body["error"]
    _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert current["status"] == "draft"


async def send_and_hand_over(api, fake, contacts: int) -> tuple[dict, list[int]]:
    campaign = await draft(api, contacts=contacts)
    await api.post(f"/api/v1/campaigns/{campaign['id']}/send")

    async def all_handed_over():
        return len(fake.job_ids()) >= contacts

    await wait_for(all_handed_over)
    _, jobs = await api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?limit=500")
    return campaign, [job["id"] for job in jobs["items"]]


def result(campaign, job_id, status, **extra):
    return {"job_id": job_id, "campaign_id": campaign["id"], "status": status, "attempt": 1, **extra}


async def test_pause_resume_cancel(campaign_api, fake_email_client):
    campaign, ids = await send_and_hand_over(campaign_api, fake_email_client, 6)
    path = f"/api/v1/campaigns/{campaign['id']}"

    status, paused = await campaign_api.post(f"{path}/pause")
    assert status == 200
    assert paused["status"] == "paused"
    assert paused["pause_reason"] == "paused by a user"
    status, body = await campaign_api.post(f"{path}/pause")
    assert status == 409

    status, resumed = await campaign_api.post(f"{path}/resume")
    assert status == 200
    assert resumed["status"] == "sending"

    await report(campaign_api, {"results": [
        result(campaign, ids[0], "sent", message_id="m0"), result(campaign, ids[1], "retrying")]})
    status, cancelled = await campaign_api.post(f"{path}/cancel")
    assert status == 200
    assert cancelled["status"] == "cancelled"
    assert cancelled["counts"] == {"pending": 0, "retrying": 0, "sent": 1, "failed": 0, "cancelled": 5}
    assert fake_email_client.actions == [
        (campaign["id"], "pause"), (campaign["id"], "resume"), (campaign["id"], "cancel")]

    # A send that was in flight when the campaign was cancelled still gets its true outcome.
    await report(campaign_api, {"results": [
        result(campaign, ids[1], "sent", message_id="m1"), result(campaign, ids[2], "retrying")]})
    _, after = await campaign_api.get(path)
    assert after["counts"]["sent"] == 2
    assert after["counts"]["cancelled"] == 4
    assert after["status"] == "cancelled"
    status, _ = await campaign_api.post(f"{path}/resume")
    assert status == 409


async def test_pause_refused_while_email_client_down(campaign_api, fake_email_client):
    campaign, _ = await send_and_hand_over(campaign_api, fake_email_client, 3)
    fake_email_client.down = True
    status, body = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/pause")
    assert status == 503
    assert "unreachable" in body["error"] or "503" in body["error"]
    _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert current["status"] == "sending"


async def test_paused_event_from_email_client(campaign_api, fake_email_client):
    campaign, ids = await send_and_hand_over(campaign_api, fake_email_client, 3)
    reason = "the gateway refused the credentials (401) on 5 sends in a row"
    status, _ = await report(campaign_api, {
        "results": [result(campaign, ids[0], "sent", message_id="m")],
        "events": [{"campaign_id": campaign["id"], "event": "paused", "reason": reason}]})
    assert status == 200
    _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert current["status"] == "paused"
    assert current["pause_reason"] == reason

    status, _ = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/resume")
    assert status == 200
    await report(campaign_api, {"results": [
        result(campaign, job_id, "sent", message_id="m") for job_id in ids[1:]]})
    _, done = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
    assert done["status"] == "finished"
    assert done["pause_reason"] is None


async def test_retry_failed_jobs_in_new_round(campaign_api, fake_email_client):
    campaign, ids = await send_and_hand_over(campaign_api, fake_email_client, 4)
    path = f"/api/v1/campaigns/{campaign['id']}"
    status, body = await campaign_api.post(f"{path}/retry-failed")
    assert status == 409

    await report(campaign_api, {"results": [
        result(campaign, ids[0], "sent", message_id="m0"), result(campaign, ids[1], "sent", message_id="m1"),
        result(campaign, ids[2], "failed", error="gateway answered 400", attempt=3),
        result(campaign, ids[3], "failed", error="gateway answered 400")]})
    handed_before = len(fake_email_client.chunks)
    status, retried = await campaign_api.post(f"{path}/retry-failed")
    assert status == 202
    assert retried["status"] == "sending"
    assert retried["counts"] == {"pending": 2, "retrying": 0, "sent": 2, "failed": 0, "cancelled": 0}

    async def retried_handed_over():
        return len(fake_email_client.chunks) > handed_before

    await wait_for(retried_handed_over)
    chunk = fake_email_client.chunks[-1]
    assert chunk["round"] == 1
    assert [job["id"] for job in chunk["jobs"]] == ids[2:]
    assert all(existing["round"] == 0 for existing in fake_email_client.chunks[:handed_before])

    # Attempts add up across rounds: email_client counts each round from 1.
    await report(campaign_api, {"results": [
        result(campaign, ids[2], "sent", message_id="m2", attempt=2),
        result(campaign, ids[3], "sent", message_id="m3")]})
    _, jobs = await campaign_api.get(f"{path}/jobs")
    assert {job["id"]: job["attempts"] for job in jobs["items"]} == {ids[0]: 1, ids[1]: 1, ids[2]: 5, ids[3]: 2}


async def test_waiting_for_email_service_is_shown(campaign_api, fake_email_client):
    fake_email_client.down = True
    campaign = await draft(campaign_api, contacts=2)
    await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")

    async def waiting():
        _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
        return current["dispatch_error"] is not None

    await wait_for(waiting)
    fake_email_client.down = False

    async def handed_over():
        _, current = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}")
        return current["dispatch_error"] is None and len(fake_email_client.job_ids()) == 2

    await wait_for(handed_over)


async def test_full_backlog_stops_hand_over(campaign_api, fake_email_client):
    fake_email_client.backlog = 1_000_000
    campaign = await draft(campaign_api, contacts=100)
    await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")

    async def one_chunk():
        return len(fake_email_client.chunks) >= 1

    await wait_for(one_chunk)
    await asyncio.sleep(0.3)
    assert len(fake_email_client.job_ids()) < 100
    fake_email_client.backlog = 0

    async def all_handed_over():
        return len(fake_email_client.job_ids()) == 100

    await wait_for(all_handed_over)
    assert len(set(fake_email_client.job_ids())) == 100


async def hand_over_failed(api: ApiClient, campaign_id: int) -> None:
    """Wait until a hand-over of the campaign failed, so that the next one reads its jobs again."""
    async def failed():
        _, current = await api.get(f"/api/v1/campaigns/{campaign_id}")
        return current["dispatch_error"] is not None

    await wait_for(failed)


async def test_contact_deleted_before_hand_over_fails_its_job(campaign_api, fake_email_client):
    fake_email_client.down = True
    campaign = await draft(campaign_api, contacts=3)
    await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
    await hand_over_failed(campaign_api, campaign["id"])
    _, jobs = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs")
    deleted = jobs["items"][0]
    status, _ = await campaign_api.delete(f"/api/v1/contacts/{deleted['contact_id']}")
    assert status == 204
    fake_email_client.down = False

    async def two_handed_over():
        return len(fake_email_client.job_ids()) == 2

    await wait_for(two_handed_over)
    _, failed = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?status=failed")
    assert [job["id"] for job in failed["items"]] == [deleted["id"]]
    assert "contact was deleted" in failed["items"][0]["error"]
    assert failed["items"][0]["email"] == deleted["email"]
    assert deleted["id"] not in fake_email_client.job_ids()


async def test_unsubscribed_contacts_left_out(campaign_api, fake_email_client, database_url):
    fake_email_client.down = True
    campaign = await draft(campaign_api, contacts=4)
    _, members = await campaign_api.get(f"/api/v1/segments/{campaign['segment_id']}/contacts")
    ids = [item["id"] for item in members["items"]]
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE contacts SET unsubscribed_at = now() WHERE id = %s", (ids[0],))
            _, sent = await campaign_api.post(f"/api/v1/campaigns/{campaign['id']}/send")
            assert sent["jobs_total"] == 3
            await hand_over_failed(campaign_api, campaign["id"])
            # One more unsubscribes after the send, before the hand-over.
            cursor.execute("UPDATE contacts SET unsubscribed_at = now() WHERE id = %s", (ids[1],))
    finally:
        connection.close()
    fake_email_client.down = False

    async def two_handed_over():
        return len(fake_email_client.job_ids()) == 2

    await wait_for(two_handed_over)
    _, failed = await campaign_api.get(f"/api/v1/campaigns/{campaign['id']}/jobs?status=failed")
    assert [job["contact_id"] for job in failed["items"]] == [ids[1]]
    assert "contact unsubscribed" in failed["items"][0]["error"]
    urls = [job["contact"]["unsubscribe_url"] for job in fake_email_client.jobs()]
    assert all(url.startswith("http://127.0.0.1:5050/unsubscribe/") for url in urls)


async def test_hand_over_resumes_after_web_restart(database_url, fake_email_client):
    def new_service() -> tuple[WebService, int]:
        port = free_port()
        config = load_config({
            "DATABASE_URL": database_url, "WEB_PORT": str(port),
            "WEB_EMAIL_CLIENT_URL": f"http://127.0.0.1:{fake_email_client.port}",
            "WEB_DISPATCH_CHUNK_SIZE": "10", "WEB_DISPATCH_BACKLOG_LIMIT": "1",
            "WEB_COOKIE_SECRET": COOKIE_SECRET, **web_secrets(),
        })
        return WebService(config), port

    # With a backlog limit of 1, each dispatch round hands over one chunk and
    # waits for the next poll, so the first web stops halfway through.
    fake_email_client.backlog = 1
    first, port = new_service()
    await first.start()
    token = await create_api_token(first)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        api = ApiClient(f"http://127.0.0.1:{port}", session)
        campaign = await draft(api, contacts=60)
        await api.post(f"/api/v1/campaigns/{campaign['id']}/send")

        async def first_chunk():
            return len(fake_email_client.chunks) >= 1

        await wait_for(first_chunk)
    await first.stop()
    assert len(set(fake_email_client.job_ids())) < 60

    fake_email_client.backlog = 0
    second, _ = new_service()
    await second.start()
    try:
        async def all_handed_over():
            return len(set(fake_email_client.job_ids())) == 60

        await wait_for(all_handed_over)
    finally:
        await second.stop()
