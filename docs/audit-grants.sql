-- The audit trail is insert-only: the application's database role may add and read its
-- rows, never change or remove them. Run as the owner of hedui's tables (the role that ran
-- `hedui db upgrade`), with the application's role in place of hedui_app.
-- The application keeps full use of every other table.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hedui_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO hedui_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_chain, audit_checkpoints FROM hedui_app;
GRANT SELECT, INSERT ON audit_events, audit_chain, audit_checkpoints TO hedui_app;
