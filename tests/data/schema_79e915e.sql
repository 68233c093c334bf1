-- The store's schema as the last release before migrations created it on SQLite: what
-- SQLModel.metadata.create_all made with the code of 79e915e^ (the parent of the claim
-- cases commit; backoffice.store, .audit, .outbox and .payloads imported; SQLAlchemy
-- 2.1.9, sqlmodel 0.0.50). Made once from `git archive 79e915e^` with the DDL read back
-- from sqlite_master; tests/test_migrations.py holds revision 0001 to it. Test data: never
-- edit it to make a test pass.
CREATE TABLE auditevent (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR NOT NULL, 
	document_id INTEGER, 
	action VARCHAR NOT NULL, 
	data JSON, 
	prev_hash VARCHAR NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE audithead (
	id INTEGER NOT NULL, 
	last_id INTEGER NOT NULL, 
	last_hash VARCHAR(64) NOT NULL, 
	count INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE checkrow (
	id INTEGER NOT NULL, 
	document_id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	severity VARCHAR NOT NULL, 
	passed BOOLEAN NOT NULL, 
	message VARCHAR NOT NULL, 
	fields JSON, 
	details JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(document_id) REFERENCES document (id)
);
CREATE TABLE document (
	id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	page INTEGER NOT NULL, 
	parent_id INTEGER, 
	original_name VARCHAR NOT NULL, 
	stored_path VARCHAR NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	format VARCHAR, 
	source VARCHAR NOT NULL, 
	batch VARCHAR, 
	status VARCHAR(11) NOT NULL, 
	reason VARCHAR, 
	doc_type VARCHAR, 
	quality JSON, 
	ocr_lines JSON, 
	ocr_seconds FLOAT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	lease_owner VARCHAR(100), 
	lease_until DATETIME, 
	attempts INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_document_sha_page UNIQUE (sha256, page), 
	FOREIGN KEY(parent_id) REFERENCES document (id)
);
CREATE TABLE document_blob (
	sha256 VARCHAR(64) NOT NULL, 
	format VARCHAR(16), 
	size_bytes INTEGER NOT NULL, 
	kid VARCHAR(40), 
	data BLOB NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (sha256)
);
CREATE TABLE document_risk (
	document_id INTEGER NOT NULL, 
	signals JSON, 
	seconds FLOAT NOT NULL, 
	portrait_sha256 VARCHAR(64), 
	portrait_region JSON, 
	PRIMARY KEY (document_id), 
	FOREIGN KEY(document_id) REFERENCES document (id)
);
CREATE TABLE fieldvalue (
	id INTEGER NOT NULL, 
	document_id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	value VARCHAR, 
	confidence FLOAT NOT NULL, 
	raw VARCHAR, 
	corrections JSON, 
	boxes JSON, 
	reviewed_value VARCHAR, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_field_doc_name UNIQUE (document_id, name), 
	FOREIGN KEY(document_id) REFERENCES document (id)
);
CREATE TABLE outbox_message (
	id INTEGER NOT NULL, 
	document_id INTEGER NOT NULL, 
	target VARCHAR(64) NOT NULL, 
	payload JSON NOT NULL, 
	payload_version INTEGER NOT NULL, 
	payload_sha256 VARCHAR(64) NOT NULL, 
	idempotency_key VARCHAR(200) NOT NULL, 
	status VARCHAR(9) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	lease_owner VARCHAR(100), 
	lease_until DATETIME, 
	last_error VARCHAR, 
	dead_reason VARCHAR, 
	posted_at DATETIME, 
	remote_id VARCHAR(200), 
	replayed BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_outbox_doc_target_version UNIQUE (document_id, target, payload_version), 
	FOREIGN KEY(document_id) REFERENCES document (id), 
	UNIQUE (idempotency_key)
);
CREATE TABLE task_payload (
	"key" VARCHAR(400) NOT NULL, 
	data BLOB NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE INDEX ix_auditevent_document_id ON auditevent (document_id);
CREATE INDEX ix_checkrow_document_id ON checkrow (document_id);
CREATE INDEX ix_document_batch ON document (batch);
CREATE INDEX ix_document_sha256 ON document (sha256);
CREATE INDEX ix_document_status ON document (status);
CREATE INDEX ix_fieldvalue_document_id ON fieldvalue (document_id);
CREATE INDEX ix_outbox_due ON outbox_message (status, target, next_attempt_at);
CREATE INDEX ix_outbox_message_document_id ON outbox_message (document_id);
CREATE INDEX ix_outbox_message_status ON outbox_message (status);
CREATE INDEX ix_outbox_message_target ON outbox_message (target);
