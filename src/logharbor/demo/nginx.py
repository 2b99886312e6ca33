"""Debian's nginx as the lab's reverse proxy, configured and run as an unprivileged process.

The config balances the two app instances, gives every request a ``$request_id`` (and passes it
upstream as ``X-Request-ID`` with the ALB's ``X-Amzn-Trace-Id``), and logs in the ``main`` format
that :mod:`logharbor.formats.nginx` ships as a preset: request time, upstream time, request id
and the trace header on every line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from logharbor.formats.nginx import LOG_FORMATS

__all__ = ["NginxNotFound", "find_nginx", "nginx_conf", "start_nginx"]

_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class NginxNotFound(RuntimeError):
    """nginx is not installed; the message says how to get it."""


def find_nginx() -> str:
    found = shutil.which("nginx") or next((c for c in _CANDIDATES if Path(c).exists()), None)
    if found is None:
        raise NginxNotFound("nginx is not installed: `apt-get install nginx-light` "
                            "(scripts/install.sh does it)")
    return found


def nginx_conf(prefix: Path, *, port: int, app_ports: tuple[int, ...], log_dir: Path, token: str = "") -> str:
    """nginx.conf for the lab: everything under ``prefix``, logs under ``log_dir``; ``/.lab-stack``
    answers ``token`` (how the stack knows the nginx on the port is its own)."""
    upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in app_ports)
    log_format = LOG_FORMATS["main"].replace("'", "\\'")
    return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {log_dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format main '{log_format}';
    access_log {log_dir}/access.log main;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream shop {{
{upstreams}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /.lab-stack {{
            access_log off;
            return 200 "{token}";
        }}
        location / {{
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header X-Amzn-Trace-Id $http_x_amzn_trace_id;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


def start_nginx(prefix: Path, *, port: int, app_ports: tuple[int, ...], log_dir: Path,
                token: str = "") -> subprocess.Popen[bytes]:
    """Write the config and start nginx in the foreground (the caller stops it)."""
    binary = find_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port=port, app_ports=app_ports, log_dir=log_dir, token=token))
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejected the lab config: {check.stderr.strip()}")
    return subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
