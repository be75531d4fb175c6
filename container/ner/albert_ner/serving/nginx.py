"""nginx in front of gunicorn, as SageMaker's bring-your-own-container examples run it.

gunicorn's threaded workers give each connection a thread from the moment it is accepted, and read the
request with blocking calls and no timeout: twenty clients that send their headers and a few bytes of
body hold twenty threads for as long as they like, and ``/ping`` stops answering. nginx reads every
request whole first (headers within :data:`CLIENT_TIMEOUT_S`, and the body with at most that long between
two reads), on an event loop where a waiting connection costs a few kilobytes, and only then hands it to
gunicorn over a Unix socket. It also enforces the body limit, answering the same JSON 413 as the
application.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
from pathlib import Path

from albert_ner.environment import ServingSettings
from albert_ner.serving.application import body_too_large

#: ``ALBERT_NER_NGINX=off`` serves with gunicorn alone (as where nginx is not installed).
NGINX_VARIABLE = "ALBERT_NER_NGINX"
#: Seconds a client may take to send its headers, and between two reads of its body.
CLIENT_TIMEOUT_S = 20


def nginx_binary(environ: dict[str, str] | None = None) -> str | None:
    """The nginx to run in front, or None (not installed, or ``ALBERT_NER_NGINX=off``)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get(NGINX_VARIABLE, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # sbin may be off a user's PATH


def write_config(directory: Path, settings: ServingSettings, upstream: Path) -> Path:
    """``nginx.conf`` in ``directory`` (also its pid file and temporary files): listen where ``settings``
    say, and pass every request, read whole, to gunicorn at the Unix socket ``upstream``."""
    limit = settings.max_payload_bytes
    too_large = json.dumps({"error": body_too_large(settings)})
    # Errors only: nginx warns at every body it buffers to a file (over 1 MB), i.e. every batch-transform
    # request. As root (in the image), its workers run as nobody: they need to reach the temporary files.
    directory.chmod(0o755)
    user = ""
    if os.geteuid() == 0:
        user = "user nobody nogroup;" if _group_exists("nogroup") else "user nobody;"
    config = f"""\
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log stderr error;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    client_max_body_size {0 if limit is None else limit};
    client_body_buffer_size 1m;
    client_header_timeout {CLIENT_TIMEOUT_S}s;
    client_body_timeout {CLIENT_TIMEOUT_S}s;
    keepalive_timeout 5s;
    upstream gunicorn {{
        server unix:{upstream};
        keepalive 16;
    }}
    server {{
        listen {settings.host}:{settings.port};
        error_page 413 = @too_large;
        location @too_large {{
            default_type application/json;
            return 413 '{too_large}';
        }}
        # gunicorn not listening yet (or restarting): not ready, as the application says while it loads.
        error_page 502 = @starting;
        location @starting {{
            default_type application/json;
            return 503 '{{"error": "the model server is starting"}}';
        }}
        location / {{
            proxy_pass http://gunicorn;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_read_timeout {settings.timeout + 30}s;
            proxy_send_timeout {settings.timeout + 30}s;
        }}
    }}
}}
"""
    path = directory / "nginx.conf"
    path.write_text(config, encoding="utf-8")
    return path


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
