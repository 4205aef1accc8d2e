-- The state database of gateway nodes sharing one PostgreSQL (gateway/store/postgres.py).
-- Same tables and columns as the SQLite store, with PostgreSQL types.
CREATE TABLE users (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, school TEXT,
  password_hash TEXT, disabled BOOLEAN NOT NULL, must_change_password BOOLEAN NOT NULL,
  totp_secret TEXT, totp_last_step BIGINT NOT NULL, failed_logins INTEGER NOT NULL,
  locked_until TIMESTAMPTZ, created_at TIMESTAMPTZ);
CREATE INDEX users_school ON users(school);
CREATE TABLE operator_sessions (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL, revoked BOOLEAN NOT NULL, kind TEXT NOT NULL DEFAULT 'bearer',
  csrf TEXT);
CREATE INDEX operator_sessions_user ON operator_sessions(user_id);
CREATE TABLE nonces (
  value TEXT PRIMARY KEY, purpose TEXT NOT NULL, user_id TEXT, expires_at TIMESTAMPTZ NOT NULL,
  bound_to TEXT);
CREATE INDEX nonces_expiry ON nonces(expires_at);
CREATE TABLE certs (
  serial TEXT PRIMARY KEY, user_id TEXT NOT NULL, school TEXT, not_before TIMESTAMPTZ NOT NULL,
  not_after TIMESTAMPTZ NOT NULL, pem TEXT NOT NULL, issued_by TEXT NOT NULL,
  issued_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ, revoke_reason TEXT);
CREATE INDEX certs_user ON certs(user_id);
CREATE TABLE workspaces (
  user_id TEXT PRIMARY KEY, provider TEXT NOT NULL, host TEXT, port INTEGER, password TEXT);
CREATE TABLE replay_requests (
  id TEXT PRIMARY KEY, recording_id TEXT NOT NULL, purpose TEXT NOT NULL, requester TEXT NOT NULL,
  reason TEXT NOT NULL, subject TEXT NOT NULL, school TEXT, created_at TIMESTAMPTZ NOT NULL,
  status TEXT NOT NULL, decided_by TEXT, decided_at TIMESTAMPTZ, decision_note TEXT,
  expires_at TIMESTAMPTZ);
CREATE INDEX replay_requests_recording ON replay_requests(recording_id);
CREATE TABLE desktop_uids (user_id TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
