-- Desktops that outlive a gateway process, resume rights that outlive the node that issued
-- them (gateway.store.desktops), and the live sessions every node sees (gateway.live.registry).
CREATE TABLE desktops (
  user_id TEXT PRIMARY KEY, node TEXT NOT NULL, host TEXT NOT NULL, display INTEGER NOT NULL,
  server_pid INTEGER NOT NULL, server_start BIGINT NOT NULL, session_pid INTEGER NOT NULL,
  session_start BIGINT NOT NULL, runtime_dir TEXT NOT NULL, rfb_socket TEXT NOT NULL,
  rfbauth TEXT NOT NULL, home TEXT NOT NULL, home_mode TEXT NOT NULL, uid INTEGER NOT NULL,
  gid INTEGER NOT NULL, switch BOOLEAN NOT NULL, sandbox_mode TEXT NOT NULL,
  marker TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL);
CREATE INDEX desktops_host ON desktops(host);
CREATE TABLE resume_tickets (
  session_id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
  cert_serial TEXT, node TEXT NOT NULL, fence INTEGER NOT NULL, grace DOUBLE PRECISION NOT NULL,
  valid_until DOUBLE PRECISION NOT NULL);
CREATE TABLE live_sessions (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, school TEXT, node TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL, cert_serial TEXT, remote TEXT, posture TEXT NOT NULL,
  state TEXT NOT NULL, end_reason TEXT);
CREATE INDEX live_sessions_node ON live_sessions(node);
