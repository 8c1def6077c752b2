-- The dev application and its documented keys, for local development and tests only.
-- Applied by `npm run dev` to the LOCAL database; never run it against production (and the
-- Worker refuses eye_dev_ keys unless ENVIRONMENT is "development" anyway).
-- Keys: eye_dev_write_key (write), eye_dev_read_key (read, all applications). Stored hashed (SHA-256).
INSERT OR IGNORE INTO applications (id, name, allowed_origins, created_at)
  VALUES ('app_dev', 'Local development', '[]', 0);
INSERT OR IGNORE INTO api_keys (id, hash, kind, app_id, prefix, created_at)
  VALUES ('key_dev_write', '777479dcc06f7254dac091d4ec949f57c8e3ead4554f8d91c8c12babe35e1c19', 'write', 'app_dev', 'eye_dev_w', 0);
INSERT OR IGNORE INTO api_keys (id, hash, kind, app_id, prefix, created_at)
  VALUES ('key_dev_read', 'b0259938f3a0d5dbe927d8822a1a91721c337c84fa207844b79469c7aa985fd1', 'read', NULL, 'eye_dev_r', 0);
