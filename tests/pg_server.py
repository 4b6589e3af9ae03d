"""A throwaway PostgreSQL server for tests: the helpers live in `eval.pg_server` (the store
benchmark starts one too); see there."""

from eval.pg_server import DATABASE, USER, ServerUnavailable, fresh_database, postgres_server

__all__ = ["DATABASE", "USER", "ServerUnavailable", "fresh_database", "postgres_server"]
