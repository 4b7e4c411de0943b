"""JSON API: gateway settings, kept by email_client."""

from web import inputs, validation
from web.handlers.base import ApiHandler


class SettingsHandler(ApiHandler):
    async def get(self):
        self.write_json(await self.email_client.get_settings())

    async def put(self):
        settings = inputs.gateway_settings(validation.parse_json_object(self.request.body))
        saved = await self.email_client.put_settings(settings)
        self.application.settings["settings_status"].forget()
        self.write_json(saved)
