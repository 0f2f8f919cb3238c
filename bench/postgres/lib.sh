# Shared by the PostgreSQL bench scripts (sourced, not run).
# Sets PGBIN to the directory holding pgbench, and defines db_url.

PGBIN="${PGBIN:-}"
if [[ -z "$PGBIN" ]]; then
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [[ -x "$d/pgbench" ]] && { PGBIN="$d"; break; }
    done
fi
[[ -x "$PGBIN/pgbench" ]] || { echo "pgbench not found (apt-get install postgresql-15 or postgresql-contrib)" >&2; exit 1; }

# The URL of database $1 on the server of $DATABASE_URL.
db_url() {
    local base="${DATABASE_URL%%\?*}" query=""
    [[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
    local rest="${base#*://}"
    printf '%s://%s/%s%s\n' "${base%%://*}" "${rest%%/*}" "$1" "$query"
}
