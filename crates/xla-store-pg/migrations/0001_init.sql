-- XLA Host's PostgreSQL store, schema version 1.
--
-- tenant_id leads every primary key and index of tenant data, so each such
-- table can be distributed by tenant_id on Citus, co-located; the tables
-- without it are small and global (reference tables): see docs/scale-out.md.
-- Times are unix milliseconds (UTC), days are days since 1970-01-01 (UTC).

-- Where a batch came from (connector, plugin, version, sha256, sync run),
-- stored once and named by a hash of itself.
CREATE TABLE provenances (
    tenant_id   text   NOT NULL,
    id          bigint NOT NULL,
    provenance  jsonb  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Raw observations, partitioned by month of `at` (partitions are created
-- ahead and on demand, named observations_pYYYYMM). A value is one row per
-- (source, record id, metric); `ticket` and `device` repeat the subject
-- dimensions for lookups across sources.
CREATE TABLE observations (
    tenant_id     text             NOT NULL,
    metric        text             NOT NULL,
    at            bigint           NOT NULL,
    source        text             NOT NULL,
    record_id     text             NOT NULL,
    value         double precision NOT NULL,
    layer         text             NOT NULL,
    dimensions    jsonb            NOT NULL,
    provenance_id bigint           NOT NULL,
    ticket        text,
    device        text,
    PRIMARY KEY (tenant_id, metric, at, source, record_id)
) PARTITION BY RANGE (at);

CREATE INDEX observations_ticket ON observations (tenant_id, ticket) WHERE ticket IS NOT NULL;
CREATE INDEX observations_device ON observations (tenant_id, device) WHERE device IS NOT NULL;

-- What retention keeps of a raw row it drops: enough for a later replace
-- or retraction of the record to take its value out of the rollups exactly
-- (value, layer, rolled-up dimensions), and for the ticket join to still
-- count it (its time, ticket number and type).
CREATE TABLE retired_observations (
    tenant_id   text             NOT NULL,
    source      text             NOT NULL,
    record_id   text             NOT NULL,
    metric      text             NOT NULL,
    at          bigint           NOT NULL,
    value       double precision NOT NULL,
    layer       text             NOT NULL,
    dimensions  jsonb            NOT NULL,
    ticket      text,
    ticket_type text,
    PRIMARY KEY (tenant_id, source, record_id, metric)
);

CREATE INDEX retired_observations_day ON retired_observations (tenant_id, metric, at);
CREATE INDEX retired_observations_ticket ON retired_observations (tenant_id, ticket) WHERE ticket IS NOT NULL;

-- Where each stored value is: what a replace or a retraction finds first.
CREATE TABLE observation_keys (
    tenant_id text   NOT NULL,
    source    text   NOT NULL,
    record_id text   NOT NULL,
    metric    text   NOT NULL,
    at        bigint NOT NULL,
    PRIMARY KEY (tenant_id, source, record_id, metric)
);

-- Rollup cells per tenant, metric, UTC day and dimension value; dimension
-- '' (value '') is every row of the day. Exact count, sum, min, max and
-- 0-10 histogram; the quantile sketch as bucket counts (xla-store's
-- `Sketch` as JSON).
CREATE TABLE rollups (
    tenant_id text             NOT NULL,
    metric    text             NOT NULL,
    dimension text             NOT NULL,
    day       integer          NOT NULL,
    value     text             NOT NULL,
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    histogram bigint[],
    sketch    jsonb            NOT NULL,
    PRIMARY KEY (tenant_id, metric, dimension, day, value)
);

-- The metrics each source has stored, with their layer.
CREATE TABLE written_metrics (
    tenant_id text NOT NULL,
    source    text NOT NULL,
    metric    text NOT NULL,
    layer     text NOT NULL,
    PRIMARY KEY (tenant_id, source, metric)
);

-- Connector cursors and open gaps, per connector instance.
CREATE TABLE cursors (
    tenant_id text NOT NULL,
    source    text NOT NULL,
    cursor    text NOT NULL,
    PRIMARY KEY (tenant_id, source)
);

CREATE TABLE gaps (
    tenant_id text  NOT NULL,
    source    text  NOT NULL,
    gaps      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, source)
);

-- Retention: raw rows of days before `cutoff` are gone; metric '' is every
-- metric of the tenant.
CREATE TABLE retired (
    tenant_id text   NOT NULL,
    metric    text   NOT NULL,
    cutoff    bigint NOT NULL,
    PRIMARY KEY (tenant_id, metric)
);

-- The sync run log. Run ids come from one sequence: unique in the store,
-- increasing.
CREATE SEQUENCE run_ids;

CREATE TABLE runs (
    tenant_id text   NOT NULL,
    instance  text   NOT NULL,
    run       bigint NOT NULL,
    record    jsonb  NOT NULL,
    PRIMARY KEY (tenant_id, instance, run)
);

-- API tokens (only their SHA-256 is stored): a token may span tenants, so
-- this is a reference table.
CREATE TABLE tokens (
    id     text  PRIMARY KEY,
    record jsonb NOT NULL
);

-- Advanced by every commit and retention pass: what caches of computed
-- reports on every host key on (see Store::data_version). A sequence, not a
-- row: commits of different tenants never wait on each other for it.
CREATE SEQUENCE data_versions;
