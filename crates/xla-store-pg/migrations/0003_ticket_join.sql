-- Schema version 3: the ticket join, kept at write time
-- (crates/xla-store-pg/src/joined.rs). Whenever a commit changes a row of a
-- ticket number (a ticket, its opening, a value naming it), the places of
-- that number's joined values and its tickets' outcomes are worked out
-- again; grouping a survey answer by its ticket's assignment group, or the
-- SLA-beside-XLA scorecard, then reads these tables instead of joining raw
-- rows. Retention never touches them: retired days keep counting.

-- Where each joined value (a row of a joined metric: survey answers, SLA
-- records) counts: the ticket it joined, with that ticket's rolled-up
-- dimensions as a JSON object, or why it joined none (`reason`, as
-- xla-store's `Unjoined` names it).
CREATE TABLE joined_values (
    tenant_id         text             NOT NULL,
    source            text             NOT NULL,
    record_id         text             NOT NULL,
    metric            text             NOT NULL,
    number            text,
    at                bigint           NOT NULL,
    value             double precision NOT NULL,
    ticket_source     text,
    ticket_record     text,
    ticket_dimensions jsonb,
    reason            text,
    PRIMARY KEY (tenant_id, source, record_id, metric)
);

CREATE INDEX joined_values_number ON joined_values (tenant_id, number) WHERE number IS NOT NULL;
CREATE INDEX joined_values_window ON joined_values (tenant_id, metric, at);
CREATE INDEX joined_values_unjoined ON joined_values (tenant_id, metric, at) WHERE ticket_record IS NULL;

-- The outcome of each ticket that has joined values (SLAs all met, latest
-- rating), as counted in outcome_cells: what a commit takes out when the
-- ticket's outcome changes.
CREATE TABLE joined_tickets (
    tenant_id  text             NOT NULL,
    source     text             NOT NULL,
    record_id  text             NOT NULL,
    number     text             NOT NULL,
    at         bigint           NOT NULL,
    dimensions jsonb            NOT NULL,
    sla_met    boolean,
    rating     double precision,
    PRIMARY KEY (tenant_id, source, record_id)
);

CREATE INDEX joined_tickets_number ON joined_tickets (tenant_id, number);

-- The scorecard's counts (xla-store's `TicketOutcomes`) of the tickets
-- resolved on a UTC day, per rolled-up dimension value of the ticket;
-- dimension '' (value '') is every ticket of the day. Counts only, so a
-- change is an exact increment.
CREATE TABLE outcome_cells (
    tenant_id     text     NOT NULL,
    day           integer  NOT NULL,
    dimension     text     NOT NULL,
    value         text     NOT NULL,
    sla_tickets   bigint   NOT NULL,
    sla_met       bigint   NOT NULL,
    ratings       bigint[] NOT NULL,
    rated_sla     bigint   NOT NULL,
    watermelons   bigint   NOT NULL,
    PRIMARY KEY (tenant_id, day, dimension, value)
);
