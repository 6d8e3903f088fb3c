#!/usr/bin/env bash
# `make run-prod-like`: the production layout on one machine (docs/deployment.md, "Rehearsal").
#
# gunicorn (deploy/gunicorn.conf.py: the portal on PORT, the OCSP service on PORT+1) + `manage.py db_worker`
# + `manage.py scheduler`, with
# CERTDESK_PRODUCTION=true, on the local PostgreSQL (database certdesk_prodlike, created if missing,
# migrated) and Redis (cache and cached sessions), CA keys on a SoftHSM token (PKI_KEY_BACKEND=pkcs11),
# collected static files served by whitenoise (CompressedManifestStaticFilesStorage).
# Secrets are generated once into var/prodlike/ (mode 0600) and reused.
#
# SECURE_SSL_REDIRECT=false: there is no TLS-terminating proxy here, so a redirect to https:// would
# lead nowhere. This is the one warning `manage.py check --deploy` reports (security.W008); in
# production nginx terminates TLS and redirects, and the variable is left unset (true).
#
#   PRODLIKE_TLS=1          also start nginx (Debian package nginx-light) with deploy/nginx/certdesk.conf
#                           and a self-signed certificate: https://127.0.0.1:PORT+443 in front of gunicorn,
#                           SECURE_SSL_REDIRECT on as in production; then `check --deploy` has no warning
#   PRODLIKE_ONLY_CHECK=1   set up and run `check --deploy`, start nothing
#   PRODLIKE_EXIT_AFTER=N   stop everything after N seconds (for a scripted smoke test)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PG=${PRODLIKE_PG:-postgres://postgres@127.0.0.1:5432}
DB=${PRODLIKE_DB:-certdesk_prodlike}
REDIS=${PRODLIKE_REDIS:-redis://127.0.0.1:6379/1}
STATE=var/prodlike
SOFTHSM_MODULE=${PKI_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

mkdir -p "$STATE" && chmod 711 "$STATE"   # secrets inside are 0600; nginx may read static/
secret() {  # a random value kept in $STATE/$1, made once
  if [ ! -s "$STATE/$1" ]; then
    (umask 077 && "$PY" -c "import secrets; print(secrets.token_urlsafe($2))" > "$STATE/$1")
  fi
  cat "$STATE/$1"
}

export DJANGO_SETTINGS_MODULE=config.settings
export CERTDESK_PRODUCTION=true CERTDESK_DEMO=false DEBUG=false
export SECRET_KEY; SECRET_KEY=$(secret secret_key 50)
export ALLOWED_HOSTS="$HOST,localhost"
export CSRF_TRUSTED_ORIGINS="http://$HOST:$PORT,http://localhost:$PORT"
export SITE_URL="http://$HOST:$PORT"
TLS_PORT=$((PORT + 443)); HTTP_PORT=$((PORT + 80)); OCSP_PORT=$((PORT + 1))
if [ -n "${PRODLIKE_TLS:-}" ]; then
  command -v nginx > /dev/null || { echo "PRODLIKE_TLS=1 needs nginx: apt-get install nginx-light"; exit 1; }
  export SECURE_SSL_REDIRECT=true SECURE_REDIRECT_EXEMPT='^pki/'
  export ALLOWED_HOSTS="$HOST,localhost" CSRF_TRUSTED_ORIGINS="https://$HOST:$TLS_PORT,https://localhost:$TLS_PORT"
  export SITE_URL="https://$HOST:$TLS_PORT" PKI_BASE_URL="http://$HOST:$HTTP_PORT"
else
  export SECURE_SSL_REDIRECT=false   # no TLS proxy locally (see above)
fi
export DATABASE_URL="$PG/$DB" CONN_HEALTH_CHECKS=true
export CACHE_URL="$REDIS" SESSION_ENGINE=django.contrib.sessions.backends.cached_db
export STATIC_ROOT="$PWD/$STATE/static" STATICFILES_BACKEND=whitenoise.storage.CompressedManifestStaticFilesStorage
export WHITENOISE_USE_FINDERS=false
export MEDIA_ROOT="$PWD/$STATE/media"   # production: DEFAULT_FILE_STORAGE=storages.backends.s3.S3Storage + AWS_*
export PKI_STATE_DIR="$PWD/$STATE/pki-state" PKI_KEY_DIR="$PWD/$STATE/pki-keys"
export PKI_KEY_PASSPHRASE_FILE="$PWD/$STATE/pki_passphrase"; secret pki_passphrase 32 > /dev/null
export GUNICORN_BIND="$HOST:$PORT" GUNICORN_ACCESS_LOG=-

# CA keys on a SoftHSM token, as on a PKCS#11 HSM; file keys when SoftHSM is missing.
if [ -e "$SOFTHSM_MODULE" ] && command -v softhsm2-util > /dev/null; then
  mkdir -p "$STATE/tokens"
  export SOFTHSM2_CONF="$PWD/$STATE/softhsm2.conf"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$PWD/$STATE/tokens" > "$SOFTHSM2_CONF"
  export PKI_KEY_BACKEND=pkcs11 PKI_PKCS11_MODULE="$SOFTHSM_MODULE" PKI_PKCS11_TOKEN_LABEL=certdesk-ca
  export PKI_PKCS11_PIN_FILE="$PWD/$STATE/hsm_pin"; secret hsm_pin 12 > /dev/null
  if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*certdesk-ca"; then
    softhsm2-util --init-token --free --label certdesk-ca --so-pin "$(secret hsm_so_pin 12)" \
      --pin "$(cat "$STATE/hsm_pin")" > /dev/null
  fi
else
  export PKI_KEY_BACKEND=file
fi

"$PY" - "$PG" "$DB" <<'PYEOF'
import sys
import psycopg
admin, name = sys.argv[1], sys.argv[2]
with psycopg.connect(admin.replace("postgres://", "postgresql://") + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"created database {name}")
PYEOF
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py pki_init > /dev/null
"$PY" manage.py check --deploy --fail-level ERROR

if [ -n "${PRODLIKE_ONLY_CHECK:-}" ]; then exit 0; fi

echo ""
echo "  certdesk (production settings) on http://$HOST:$PORT/  — PostgreSQL $DB, Redis $REDIS, CA keys: $PKI_KEY_BACKEND"
echo "  gunicorn (portal and OCSP service) + db_worker + scheduler; Ctrl-C stops them all"
echo ""
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT INT TERM
.venv/bin/gunicorn --config deploy/gunicorn.conf.py & pids+=($!)
# The OCSP service, as deploy/systemd/certdesk-ocsp.service starts it.
GUNICORN_BIND="$HOST:$OCSP_PORT" GUNICORN_APP=config.ocsp:application GUNICORN_WORKER_CLASS=uvicorn_worker.UvicornWorker \
  GUNICORN_PROC_NAME=certdesk-ocsp GUNICORN_ACCESS_LOG="" .venv/bin/gunicorn --config deploy/gunicorn.conf.py & pids+=($!)
echo "  OCSP service: http://$HOST:$OCSP_PORT/pki/ocsp/"
if [ -n "${PRODLIKE_TLS:-}" ]; then
  # deploy/nginx/certdesk.conf with local ports, a self-signed certificate and this checkout's paths.
  NGX="$PWD/$STATE/nginx"; mkdir -p "$NGX"
  [ -s "$NGX/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$NGX/key.pem" -out "$NGX/cert.pem" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2> /dev/null
  sed -e "s#/etc/nginx/tls/cert.example.cn.fullchain.pem#$NGX/cert.pem#; s#/etc/nginx/tls/cert.example.cn.key.pem#$NGX/key.pem#" \
      -e "s#listen 80;#listen $HOST:$HTTP_PORT;#; s#listen \[::\]:80;##" \
      -e "s#listen 443 ssl http2;#listen $HOST:$TLS_PORT ssl http2;#; s#listen \[::\]:443 ssl http2;##" \
      -e "s#server 10.0.1.11:8000 #server $HOST:$PORT #; s#.*server 10.0.1.12:8000.*##" \
      -e "s#server 10.0.1.11:8001 #server $HOST:$OCSP_PORT #; s#.*server 10.0.1.12:8001.*##" \
      -e "s#server_name cert.example.cn;#server_name $HOST localhost;#" \
      -e "s#return 301 https://\$host\$request_uri;#return 301 https://\$host:$TLS_PORT\$request_uri;#" \
      -e "s#ssl_stapling on;#ssl_stapling off;#; s#ssl_stapling_verify on;##" \
      -e "s#/srv/certdesk/staticfiles/#$STATIC_ROOT/#" deploy/nginx/certdesk.conf > "$NGX/site.conf"
  cat > "$NGX/nginx.conf" <<NGXEOF
daemon off;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
events { worker_connections 512; }
http {
  include /etc/nginx/mime.types;
  access_log $NGX/access.log;
  client_body_temp_path $NGX/body; proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi; uwsgi_temp_path $NGX/uwsgi; scgi_temp_path $NGX/scgi;
  include $NGX/site.conf;
}
NGXEOF
  nginx -c "$NGX/nginx.conf" -p "$NGX" & pids+=($!)
  echo "  TLS proxy (nginx): https://$HOST:$TLS_PORT/  (OCSP/CRL over http://$HOST:$HTTP_PORT/pki/)"
fi
# The worker's niceness, as its unit sets it: background work yields the CPU to requests.
WORKER_NICE=$(sed -n 's/^Nice=//p' deploy/systemd/certdesk-worker@.service)
nice -n "$WORKER_NICE" "$PY" manage.py db_worker & pids+=($!)
"$PY" manage.py scheduler & pids+=($!)
if [ -n "${PRODLIKE_EXIT_AFTER:-}" ]; then
  sleep "$PRODLIKE_EXIT_AFTER"
else
  wait -n "${pids[@]}"
fi
