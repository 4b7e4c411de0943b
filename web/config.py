"""Settings of the web service, read from config/web.json and the environment."""

from common.config import Config, Setting, load

SETTINGS = (
    Setting("host", str, "Address to listen on; 0.0.0.0 to accept connections from other hosts."),
    Setting("port", int, "TCP port of the pages and the JSON API."),
    Setting("database_url", str, "PostgreSQL connection URL.", env="DATABASE_URL", secret=True),
    Setting("email_client_url", str, "Base URL of the email_client service."),
    Setting("public_url", str,
            "Base URL at which the recipients of emails reach web, for the unsubscribe link in every email, such "
            "as https://news.example.com."),
    Setting("dispatch_chunk_size", int, "Jobs handed to email_client per request."),
    Setting("dispatch_backlog_limit", int,
            "Jobs of one campaign that email_client may hold unsent before web stops handing over more."),
    Setting("import_max_bytes", int, "Largest CSV file accepted by an import, in bytes."),
    Setting("log_level", str, "Logging level: DEBUG, INFO, WARNING or ERROR."),
    Setting("cookie_secret", str,
            "Key that signs the session cookies, at least 32 random characters; every web process needs the same "
            "one. Set this or `cookie_secret_file`.", secret=True),
    Setting("cookie_secret_file", str, "Path of a file holding the cookie secret, in place of `cookie_secret`."),
    Setting("session_hours", float, "Hours after signing in until a session ends and the user signs in again."),
    Setting("admin_email", str,
            "Address of a user that web creates when it starts, unless a user with that address exists."),
    Setting("admin_password", str, "Password of the user `admin_email`, at least 10 characters.", secret=True),
    Setting("service_secret", str,
            "Key shared with email_client that signs the requests between the two services, at least 32 "
            "characters. Set this or `service_secret_file`.", secret=True),
    Setting("service_secret_file", str, "Path of a file holding the service secret, in place of `service_secret`."),
)


def load_config(environ=None) -> Config:
    return load("web", SETTINGS, environ)
