"""segcore's canonical input tables: column names and the kind of value each holds."""

KEY, TEMPORAL, NUMERIC, STRING, FLAG = "key", "temporal", "numeric", "string", "flag"

SCHEMAS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": KEY,
        "signup_date": TEMPORAL,
        "birth_year": NUMERIC,
        "gender": STRING,
        "income_band": STRING,
        "country": STRING,
        "region": STRING,
        "city": STRING,
    },
    "orders": {
        "order_id": KEY,
        "customer_id": KEY,
        "order_ts": TEMPORAL,
        "amount": NUMERIC,
        "quantity": NUMERIC,
        "category": STRING,
        "channel": STRING,
        "discount": NUMERIC,
        "returned": FLAG,
    },
    "events": {
        "customer_id": KEY,
        "event_ts": TEMPORAL,
        "event_type": STRING,
        "device": STRING,
        "os": STRING,
        "session_id": KEY,
    },
}


def identity_mapping(table: str) -> dict[str, str]:
    """The default column mapping of a table: every column under its own name."""
    return {name: name for name in SCHEMAS[table]}
