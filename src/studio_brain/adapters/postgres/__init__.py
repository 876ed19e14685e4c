"""PostgreSQL adapters: connection pool, embedded server, migrations, and the stores built on them."""
