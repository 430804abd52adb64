-- Version 2: leases, so several hosts share one store's syncs (see
-- src/lease.rs). One row per connector instance that was ever leased.
CREATE SEQUENCE lease_tokens;

CREATE TABLE leases (
    tenant_id text NOT NULL,
    instance  text NOT NULL,
    -- The holder (`host/pid/nonce`); empty once released.
    holder    text NOT NULL,
    -- The fencing token of the latest grant (from lease_tokens).
    token     bigint NOT NULL,
    -- When the latest grant runs out unless renewed, by this server's clock.
    expires   timestamptz NOT NULL,
    -- When the instance's next scheduled run is due (NULL: whenever).
    next_due  timestamptz,
    PRIMARY KEY (tenant_id, instance)
);
