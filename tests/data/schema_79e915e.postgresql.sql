-- The store's schema as the last release before migrations created it on PostgreSQL: what
-- SQLModel.metadata.create_all made with the code of 79e915e^ (as schema_79e915e.sql),
-- dumped by `pg_dump --schema-only --no-owner --no-privileges` (PostgreSQL 15) with its
-- psql-only \restrict lines removed. tests/test_migrations.py holds revision 0001 to it.
-- Test data: never edit it to make a test pass.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: outboxstatus; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.outboxstatus AS ENUM (
    'PENDING',
    'IN_FLIGHT',
    'POSTED',
    'DEAD'
);


--
-- Name: status; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.status AS ENUM (
    'RECEIVED',
    'PROCESSING',
    'PROCESSED',
    'IN_REVIEW',
    'APPROVED',
    'POSTED',
    'REJECTED',
    'QUARANTINED'
);


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: auditevent; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auditevent (
    id integer NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying NOT NULL,
    document_id integer,
    action character varying NOT NULL,
    data json,
    prev_hash character varying NOT NULL,
    hash character varying(64) NOT NULL
);


--
-- Name: auditevent_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.auditevent_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: auditevent_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.auditevent_id_seq OWNED BY public.auditevent.id;


--
-- Name: audithead; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audithead (
    id integer NOT NULL,
    last_id integer NOT NULL,
    last_hash character varying(64) NOT NULL,
    count integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: checkrow; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkrow (
    id integer NOT NULL,
    document_id integer NOT NULL,
    rule character varying NOT NULL,
    severity character varying NOT NULL,
    passed boolean NOT NULL,
    message character varying NOT NULL,
    fields json,
    details json
);


--
-- Name: checkrow_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.checkrow_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: checkrow_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.checkrow_id_seq OWNED BY public.checkrow.id;


--
-- Name: document; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.document (
    id integer NOT NULL,
    sha256 character varying(64) NOT NULL,
    page integer NOT NULL,
    parent_id integer,
    original_name character varying NOT NULL,
    stored_path character varying NOT NULL,
    size_bytes integer NOT NULL,
    format character varying,
    source character varying NOT NULL,
    batch character varying,
    status public.status NOT NULL,
    reason character varying,
    doc_type character varying,
    quality json,
    ocr_lines json,
    ocr_seconds double precision,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    lease_owner character varying(100),
    lease_until timestamp with time zone,
    attempts integer NOT NULL
);


--
-- Name: document_blob; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.document_blob (
    sha256 character varying(64) NOT NULL,
    format character varying(16),
    size_bytes integer NOT NULL,
    kid character varying(40),
    data bytea NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: document_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.document_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: document_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.document_id_seq OWNED BY public.document.id;


--
-- Name: document_risk; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.document_risk (
    document_id integer NOT NULL,
    signals json,
    seconds double precision NOT NULL,
    portrait_sha256 character varying(64),
    portrait_region json
);


--
-- Name: fieldvalue; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.fieldvalue (
    id integer NOT NULL,
    document_id integer NOT NULL,
    name character varying NOT NULL,
    value character varying,
    confidence double precision NOT NULL,
    raw character varying,
    corrections json,
    boxes json,
    reviewed_value character varying
);


--
-- Name: fieldvalue_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.fieldvalue_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: fieldvalue_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.fieldvalue_id_seq OWNED BY public.fieldvalue.id;


--
-- Name: outbox_message; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outbox_message (
    id integer NOT NULL,
    document_id integer NOT NULL,
    target character varying(64) NOT NULL,
    payload json NOT NULL,
    payload_version integer NOT NULL,
    payload_sha256 character varying(64) NOT NULL,
    idempotency_key character varying(200) NOT NULL,
    status public.outboxstatus NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    lease_owner character varying(100),
    lease_until timestamp with time zone,
    last_error character varying,
    dead_reason character varying,
    posted_at timestamp with time zone,
    remote_id character varying(200),
    replayed boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: outbox_message_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.outbox_message_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbox_message_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.outbox_message_id_seq OWNED BY public.outbox_message.id;


--
-- Name: task_payload; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_payload (
    key character varying(400) NOT NULL,
    data bytea NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: auditevent id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auditevent ALTER COLUMN id SET DEFAULT nextval('public.auditevent_id_seq'::regclass);


--
-- Name: checkrow id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkrow ALTER COLUMN id SET DEFAULT nextval('public.checkrow_id_seq'::regclass);


--
-- Name: document id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document ALTER COLUMN id SET DEFAULT nextval('public.document_id_seq'::regclass);


--
-- Name: fieldvalue id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fieldvalue ALTER COLUMN id SET DEFAULT nextval('public.fieldvalue_id_seq'::regclass);


--
-- Name: outbox_message id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox_message ALTER COLUMN id SET DEFAULT nextval('public.outbox_message_id_seq'::regclass);


--
-- Name: auditevent auditevent_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auditevent
    ADD CONSTRAINT auditevent_pkey PRIMARY KEY (id);


--
-- Name: audithead audithead_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audithead
    ADD CONSTRAINT audithead_pkey PRIMARY KEY (id);


--
-- Name: checkrow checkrow_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkrow
    ADD CONSTRAINT checkrow_pkey PRIMARY KEY (id);


--
-- Name: document_blob document_blob_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document_blob
    ADD CONSTRAINT document_blob_pkey PRIMARY KEY (sha256);


--
-- Name: document document_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document
    ADD CONSTRAINT document_pkey PRIMARY KEY (id);


--
-- Name: document_risk document_risk_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document_risk
    ADD CONSTRAINT document_risk_pkey PRIMARY KEY (document_id);


--
-- Name: fieldvalue fieldvalue_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fieldvalue
    ADD CONSTRAINT fieldvalue_pkey PRIMARY KEY (id);


--
-- Name: outbox_message outbox_message_idempotency_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox_message
    ADD CONSTRAINT outbox_message_idempotency_key_key UNIQUE (idempotency_key);


--
-- Name: outbox_message outbox_message_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox_message
    ADD CONSTRAINT outbox_message_pkey PRIMARY KEY (id);


--
-- Name: task_payload task_payload_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_payload
    ADD CONSTRAINT task_payload_pkey PRIMARY KEY (key);


--
-- Name: document uq_document_sha_page; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document
    ADD CONSTRAINT uq_document_sha_page UNIQUE (sha256, page);


--
-- Name: fieldvalue uq_field_doc_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fieldvalue
    ADD CONSTRAINT uq_field_doc_name UNIQUE (document_id, name);


--
-- Name: outbox_message uq_outbox_doc_target_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox_message
    ADD CONSTRAINT uq_outbox_doc_target_version UNIQUE (document_id, target, payload_version);


--
-- Name: ix_auditevent_document_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_auditevent_document_id ON public.auditevent USING btree (document_id);


--
-- Name: ix_checkrow_document_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_checkrow_document_id ON public.checkrow USING btree (document_id);


--
-- Name: ix_document_batch; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_document_batch ON public.document USING btree (batch);


--
-- Name: ix_document_sha256; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_document_sha256 ON public.document USING btree (sha256);


--
-- Name: ix_document_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_document_status ON public.document USING btree (status);


--
-- Name: ix_fieldvalue_document_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_fieldvalue_document_id ON public.fieldvalue USING btree (document_id);


--
-- Name: ix_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_due ON public.outbox_message USING btree (status, target, next_attempt_at);


--
-- Name: ix_outbox_message_document_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_message_document_id ON public.outbox_message USING btree (document_id);


--
-- Name: ix_outbox_message_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_message_status ON public.outbox_message USING btree (status);


--
-- Name: ix_outbox_message_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_message_target ON public.outbox_message USING btree (target);


--
-- Name: checkrow checkrow_document_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkrow
    ADD CONSTRAINT checkrow_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.document(id);


--
-- Name: document document_parent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document
    ADD CONSTRAINT document_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.document(id);


--
-- Name: document_risk document_risk_document_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.document_risk
    ADD CONSTRAINT document_risk_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.document(id);


--
-- Name: fieldvalue fieldvalue_document_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fieldvalue
    ADD CONSTRAINT fieldvalue_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.document(id);


--
-- Name: outbox_message outbox_message_document_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox_message
    ADD CONSTRAINT outbox_message_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.document(id);


--
-- PostgreSQL database dump complete
--


