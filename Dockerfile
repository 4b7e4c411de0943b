# Production image of web and email_client, used by docker-compose.prod.yml.
# The source lives in the image; the same image runs either service:
#   docker run ... postmill python -m web
#   docker run ... postmill python -m email_client
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Inside a container the services must accept connections from other
# containers; what reaches them from outside is decided by the published ports.
ENV WEB_HOST=0.0.0.0 \
    EMAIL_CLIENT_HOST=0.0.0.0

RUN useradd --system --no-create-home --uid 10001 postmill

WORKDIR /app

# Installed before the source is copied, so that a source change reuses this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Folders by name: the mock gateway and the local launcher stay out of the
# production image, and so do .stack/ and .git.
COPY common ./common
COPY config ./config
COPY web ./web
COPY email_client ./email_client

USER postmill
EXPOSE 5050 5051

CMD ["python", "-m", "web"]
