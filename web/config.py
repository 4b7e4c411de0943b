"""Settings of the web service, read from config/web.json and the environment."""

from common.config import Config, Setting, load

SETTINGS = (
    Setting("host", str, "Address to listen on; 0.0.0.0 to accept connections from other hosts."),
    Setting("port", int, "TCP port of the pages and the JSON API."),
    Setting("database_url", str, "PostgreSQL connection URL.", env="DATABASE_URL", secret=True),
    Setting("email_client_url", str, "Base URL of the email_client service."),
    Setting("dispatch_chunk_size", int, "Jobs handed to email_client per request."),
    Setting("dispatch_backlog_limit", int,
            "Jobs of one campaign that email_client may hold unsent before web stops handing over more."),
    Setting("import_max_bytes", int, "Largest CSV file accepted by an import, in bytes."),
    Setting("log_level", str, "Logging level: DEBUG, INFO, WARNING or ERROR."),
)


def load_config(environ=None) -> Config:
    return load("web", SETTINGS, environ)
