-- Redis's two jobs, and what of them must be durable: the newest fencing token each lock's
-- guarded writes have seen (a lease holder that lost its lease is refused), and snapshots of
-- exchange rates as each provider published them.

CREATE TABLE lock_fences (
    name        text        PRIMARY KEY,
    token       bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- rate: 1 base = rate quote, as the provider published it on as_of (its own base currency).
CREATE TABLE exchange_rates (
    provider    text        NOT NULL,
    base        text        NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
    quote       text        NOT NULL CHECK (quote ~ '^[A-Z]{3}$'),
    rate        numeric     NOT NULL CHECK (rate > 0),
    as_of       date        NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, base, quote, as_of)
);
CREATE INDEX exchange_rates_as_of ON exchange_rates (as_of DESC, provider);
