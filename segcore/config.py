"""Typed pipeline configuration, loaded from YAML with ``--set key=value`` overrides.

The defaults here are the embedded defaults; ``conf/default.yaml`` documents every key with the
same values (a test keeps the two equal).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from segcore.errors import ConfigError
from segcore.lake.schema import SCHEMAS, identity_mapping

# The user's MLFLOW_TRACKING_URI, read once: mlflow.set_tracking_uri() writes that variable in
# this process, so reading it later would return whatever store the last run used.
STARTUP_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: give a value, or null where the key allows it")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]  # a path, query, predicate or expression


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


FileFormat = Literal["parquet", "csv"]
OptionValue = str | bool | int | float
_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SourceConfig(_Strict):
    """A folder of Parquet or CSV files, registered as a Spark SQL view for the tables' queries.
    ``options`` go to Spark's reader (CSV: header, sep, inferSchema, ...; header defaults to true)."""

    path: Text
    format: FileFormat = "parquet"
    options: dict[str, OptionValue] = Field(default_factory=dict)


class TableConfig(_Strict):
    """An input table: a folder of files (``path``) or a Spark SQL ``query`` over ``lake.sources``;
    an optional ``filter`` predicate over its columns; ``columns`` maps segcore's names to a column
    or a Spark SQL expression (null: the lake has no such column)."""

    path: Text | None = None
    format: FileFormat = "parquet"
    options: dict[str, OptionValue] = Field(default_factory=dict)
    query: Text | None = None
    filter: Text | None = None
    columns: dict[str, Text | None] = Field(default_factory=dict)
    table: ClassVar[str]  # segcore's name of the table: ``columns`` maps its names (lake.schema)

    @field_validator("columns")
    @classmethod
    def _known_names(cls, columns: dict[str, str | None]) -> dict[str, str | None]:
        known = SCHEMAS[cls.table]
        unknown = sorted(set(columns) - set(known))
        if unknown:
            raise ValueError(
                f"maps unknown name(s) {unknown}: the names segcore knows for table '{cls.table}' are "
                f"{sorted(known)}"
            )
        return columns

    @model_validator(mode="after")
    def _path_or_query(self) -> TableConfig:
        if self.query is not None and "path" in self.model_fields_set and self.path is not None:
            raise ValueError("set either path (a folder of files) or query (SQL over lake.sources), not both")
        if self.query is not None:
            object.__setattr__(self, "path", None)
        return self


class CustomersTable(TableConfig):
    table = "customers"
    path: Text | None = "lake/customers"
    columns: dict[str, Text | None] = Field(default_factory=lambda: identity_mapping("customers"))


class OrdersTable(TableConfig):
    table = "orders"
    path: Text | None = "lake/orders"
    columns: dict[str, Text | None] = Field(default_factory=lambda: identity_mapping("orders"))


class EventsTable(TableConfig):
    table = "events"
    path: Text | None = "lake/events"
    columns: dict[str, Text | None] = Field(default_factory=lambda: identity_mapping("events"))


class LakeConfig(_Strict):
    """The input tables (customers and events optional: null), the sources their queries read,
    and the share of unusable rows a table may lose before the stage stops."""

    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    max_dropped_fraction: float = Field(0.5, ge=0, le=1)
    customers: CustomersTable | None = Field(default_factory=CustomersTable)
    orders: OrdersTable = Field(default_factory=OrdersTable)
    events: EventsTable | None = Field(default_factory=EventsTable)

    @field_validator("orders", mode="before")
    @classmethod
    def _orders_required(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("the orders table is required: give its path or query")
        return value

    @model_validator(mode="after")
    def _tables_without_path_or_query(self) -> LakeConfig:
        """``customers: {path: null}`` means no customers table, like ``customers: null`` (events
        alike); a table with other settings but neither path nor query is refused."""
        for name in ("customers", "events"):
            table = getattr(self, name)
            if table is None or table.path is not None or table.query is not None:
                continue
            others = sorted(table.model_fields_set - {"path", "query"})
            if others:
                raise ValueError(
                    f"lake.{name} sets {others} but neither path nor query: give its path (a folder) or "
                    f"query, or write lake.{name}: null for a lake without that table"
                )
            object.__setattr__(self, name, None)
        if self.orders.path is None and self.orders.query is None:
            raise ValueError(
                "the orders table is required: give lake.orders.path (a folder) or lake.orders.query"
            )
        return self

    @field_validator("sources")
    @classmethod
    def _view_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        bad = [name for name in value if not _VIEW_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"source names {bad} must be SQL identifiers (letters, digits, _)")
        return value


FeatureGroup = Literal["rfm", "behavioural", "demographic", "geographic", "technographic"]


class FeaturesConfig(_Strict):
    """Which feature groups to build, how returns count, and the levels that become share columns."""

    groups: list[FeatureGroup] = Field(
        default_factory=lambda: ["rfm", "behavioural", "demographic", "geographic", "technographic"]
    )
    output: str = "features"
    max_order_amount: float = Field(100_000.0, gt=0)
    # Rows with a negative amount (returns, cancellations, credit notes): net = subtract them,
    # exclude = leave them out (gross spend), refuse = stop with exit 2.
    returns: Literal["net", "exclude", "refuse"] = "net"
    categories: list[str] = Field(
        default_factory=lambda: ["electronics", "fashion", "home", "beauty", "grocery", "sports"]
    )
    channels: list[str] = Field(default_factory=lambda: ["web", "app", "store"])
    devices: list[str] = Field(default_factory=lambda: ["mobile", "desktop", "tablet"])
    os: list[str] = Field(default_factory=lambda: ["ios", "android", "windows", "macos"])
    income_bands: list[str] = Field(
        default_factory=lambda: ["low", "lower_middle", "middle", "upper_middle", "high"]
    )
    regions: list[str] = Field(default_factory=lambda: ["north", "south", "east", "west"])


class SparkEngineConfig(_Strict):
    """The ``spark`` engine: one barrier task per worker holds its rows in memory."""

    num_workers: int | None = Field(None, ge=1)  # null = the cluster's default parallelism
    timeout_s: float = Field(300.0, gt=0)  # how long tasks wait for each other


class DaskEngineConfig(_Strict):
    """The ``dask`` engine: a scheduler address, or a local cluster started for the job."""

    scheduler: str | None = None
    local_workers: int = Field(2, ge=1)


class KRange(_Strict):
    """Try every k from ``min`` to ``max`` and choose one by ``select.rule``."""

    min: int = Field(2, ge=1)
    max: int = Field(12, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> KRange:
        if self.max < self.min:
            raise ValueError(f"k range max={self.max} is below min={self.min}")
        return self


class KMeansConfig(_Strict):
    """The clustering core: engine, number of segments and Lloyd settings."""

    engine: Literal["local", "spark", "dask", "cuml", "spark-mllib"] = "local"
    k: Annotated[int, Field(ge=1)] | KRange = 5
    seed: int = 42
    max_iter: int = Field(100, ge=1)
    tol: float = Field(1e-4, ge=0)
    init: Literal["k-means||", "champion"] = "k-means||"
    oversampling: float = Field(2.0, gt=0)
    init_rounds: int = Field(5, ge=1)
    dtype: Literal["float32", "float64"] = "float64"
    # Where the local, dask and spark engines hold their blocks: cpu (NumPy) or gpu (CuPy).
    device: Literal["cpu", "gpu"] = "cpu"
    spark: SparkEngineConfig = Field(default_factory=SparkEngineConfig)
    dask: DaskEngineConfig = Field(default_factory=DaskEngineConfig)


# Money, count and duration features: skewed, so log-transformed by default.
SKEWED_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean",
    "tenure_days",
    "events_per_active_month",
)
BEHAVIOUR_FEATURES = ("discount_rate", "events_per_active_month", "device_mobile_share")


class TrainConfig(_Strict):
    """Which features enter the clustering and how they are prepared."""

    features: list[str] = Field(default_factory=lambda: [*SKEWED_FEATURES[:5], *BEHAVIOUR_FEATURES])
    log_features: list[str] = Field(default_factory=lambda: list(SKEWED_FEATURES))
    clip_quantile: float = Field(0.005, ge=0, lt=0.5)
    silhouette_sample: int = Field(5000, ge=10)


class SelectConfig(_Strict):
    """How k is chosen from a range, and how stability is measured."""

    rule: Literal["davies_bouldin", "silhouette", "elbow", "calinski_harabasz", "fixed"] = "davies_bouldin"
    fixed_k: int | None = Field(None, ge=1)  # with rule: fixed
    stability_bootstraps: int = Field(5, ge=2)
    stability_min_ari: float = Field(0.8, ge=0, le=1)


class SegmentsConfig(_Strict):
    """Stable segment ids across runs, and names set by hand."""

    # New centres farther than this (scaled units) from every champion centre get a new id.
    max_match_distance: float = Field(2.0, gt=0)
    names: dict[int, str] = Field(default_factory=dict)


class ScoreConfig(_Strict):
    output: str = "segments"
    profiles_output: str = "profiles"
    kpis_output: str = "kpis"
    model_version: str | None = None
    model_alias: str = "champion"


class DriftConfig(_Strict):
    """Drift between two scorings (``segcore drift``) and its alert thresholds (null: no alert)."""

    output: str = "drift"
    # Population stability index of any feature, of the segment shares; absolute change of any
    # segment's share of customers (0.05 = 5 percentage points).
    max_psi: float | None = Field(0.25, gt=0)
    max_segment_psi: float | None = Field(0.1, gt=0)
    max_share_shift: float | None = Field(0.05, gt=0, le=1)
    # Absolute change of any segment's share of customers in the highest value.risk_bands band.
    max_risk_shift: float | None = Field(0.1, gt=0, le=1)
    # Fall of any segment's retention (score's KPIs: last month's buyers who bought again), for
    # segments with at least min_retention_buyers such buyers in both scorings.
    max_retention_drop: float | None = Field(0.1, gt=0, le=1)
    min_retention_buyers: int = Field(30, ge=1)
    psi_bins: int = Field(10, ge=2, le=100)
    features: list[str] | None = None  # features whose PSI is computed (null: every feature column)


class PromoteConfig(_Strict):
    """The gate ``segcore promote`` holds a challenger to before it becomes the champion."""

    min_stability: float = Field(0.8, ge=0, le=1)  # ARI between the two models' assignments
    min_segment_share: float = Field(0.02, ge=0, lt=1)  # of the customers, for every segment
    max_quality_loss: float = Field(0.05, ge=0)  # relative loss of the select.rule's metric


class ValueConfig(_Strict):
    """Churn risk and expected value per customer (BG/NBD and Gamma-Gamma, :mod:`segcore.value`),
    trained by ``segcore train`` beside the segments and scored by ``segcore score``."""

    enabled: bool = True
    time_unit: Literal["day", "week"] = "day"  # the models' unit of time (their parameters depend on it)
    horizon_days: int = Field(90, ge=1)  # the future that churn risk and expected value look at
    monthly_discount_rate: float = Field(0.0, ge=0, lt=1)  # of expected value, per 30 days
    # Upper bounds of churn_risk per band, ascending; the last band ends at 1 and is "high risk".
    risk_bands: dict[str, float] = Field(default_factory=lambda: {"low": 0.3, "medium": 0.6, "high": 1.0})
    gamma_gamma_sample: int = Field(200_000, ge=100)  # repeat customers above this: a seeded sample
    backtest: bool = True  # refit at as_of - horizon and compare with the customers' next horizon
    backtest_output: str = "value_backtest"  # its inputs, written by `segcore features` with its table
    gate: bool = False  # a model worse than the naive baseline in the backtest stops train (exit 4)
    registered_model: str = "customer_value"

    @field_validator("risk_bands")
    @classmethod
    def _ascending_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        bounds = list(value.values())
        if not bounds or bounds != sorted(bounds) or bounds[-1] != 1.0 or bounds[0] <= 0:
            raise ValueError("risk bands need ascending upper bounds in (0, 1], the last one 1.0")
        return value

    def high_risk_band(self) -> str:
        return list(self.risk_bands)[-1]


class AudienceConfig(_Strict):
    """One audience a CRM loads (``segcore audiences``): the customers of a scoring that ``where``
    accepts, with a control group held back."""

    where: Text  # Spark SQL predicate over the scoring's columns (segment_name, churn_risk_band, ...)
    columns: list[str] = Field(default_factory=list)  # customers table columns to add, e.g. email
    control_share: float = Field(0.1, ge=0, lt=1)  # held back from the CRM file, by customer id hash
    salt: str | None = None  # of the control group's hash (null: the audience's name)

    @field_validator("where", mode="before")
    @classmethod
    def _predicate_text(cls, value: Any) -> Any:
        """``where: true`` (everyone) reaches the config as YAML's boolean: it is Spark SQL's too."""
        return str(value).lower() if isinstance(value, bool) else value


class CampaignsConfig(_Strict):
    """Where audiences are written, and what ``segcore lift`` and the KPIs measure."""

    audiences_output: str = "audiences"  # <output>/as_of=YYYY-MM-DD/<audience>/
    # A group (treatment or control, per segment) with fewer customers gets no interval.
    min_group_customers: int = Field(30, ge=2)
    confidence: float = Field(0.95, gt=0, lt=1)  # of lift intervals


class MlflowConfig(_Strict):
    """Where runs and models are recorded. ``tracking_uri: null`` means MLFLOW_TRACKING_URI, or
    the embedded SQLite store ``sqlite:///<workdir>/mlflow.db``."""

    tracking_uri: str | None = None
    experiment: str = "segcore"
    registered_model: str = "customer_segments"


class Config(_Strict):
    """The whole pipeline configuration."""

    workdir: str = "."
    as_of: dt.date = dt.date(2026, 6, 30)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    kmeans: KMeansConfig = Field(default_factory=KMeansConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    promote: PromoteConfig = Field(default_factory=PromoteConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    audiences: dict[str, AudienceConfig] = Field(default_factory=dict)
    campaigns: CampaignsConfig = Field(default_factory=CampaignsConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)

    @field_validator("audiences")
    @classmethod
    def _folder_names(cls, value: dict[str, AudienceConfig]) -> dict[str, AudienceConfig]:
        """An audience's name is a folder of its export and part of file names a CRM sees."""
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
                raise ValueError(f"audience name {name!r}: use letters, digits, '_' and '-' only")
        return value

    @model_validator(mode="after")
    def _value_features_need_the_value_model(self) -> Config:
        """Value scores in ``train.features`` come from the value model, checked at load."""
        from segcore.value.scores import VALUE_FEATURES

        scores = [f for f in self.train.features if f in VALUE_FEATURES]
        if scores and not self.value.enabled:
            raise ConfigError(
                f"config key 'train.features' names value score(s) {scores}, which the customer value "
                "model derives, and value.enabled is false: set value.enabled: true, or remove them"
            )
        return self

    @model_validator(mode="after")
    def _fixed_k_in_range(self) -> Config:
        """``select.rule: fixed`` names a k of the range, checked at load rather than after every fit."""
        k = self.kmeans.k
        if self.select.rule != "fixed" or not isinstance(k, KRange):
            return self
        fixed = self.select.fixed_k
        if fixed is None or not k.min <= fixed <= k.max:
            got = "is not set" if fixed is None else f"is {fixed}"
            raise ConfigError(
                f"config key 'select.fixed_k' {got}: select.rule 'fixed' needs a k of the range kmeans.k "
                f"({k.min}..{k.max}): set select.fixed_k, or another select.rule"
            )
        return self

    def path(self, relative_or_absolute: str) -> str:
        """Resolve a configured path: URIs and absolute paths as given, others under workdir (a
        folder or a URI such as ``s3a://bucket/segcore``)."""
        if "://" in relative_or_absolute or os.path.isabs(relative_or_absolute):
            return relative_or_absolute
        if "://" in self.workdir:
            return f"{self.workdir.rstrip('/')}/{relative_or_absolute}"
        return str(Path(self.workdir, relative_or_absolute).resolve())

    def partition(self, output: str, as_of: dt.date | None = None) -> str:
        """The ``as_of=YYYY-MM-DD`` partition of an output table, for ``as_of`` or the config's date."""
        return f"{self.path(output).rstrip('/')}/as_of={(as_of or self.as_of).isoformat()}"

    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        if STARTUP_TRACKING_URI:
            return STARTUP_TRACKING_URI
        return f"sqlite:///{self._local_workdir() / 'mlflow.db'}"

    def artifact_location(self) -> str:
        """Artifacts beside the embedded SQLite store; the server's own default otherwise."""
        return (self._local_workdir() / "mlartifacts").as_uri()

    def _local_workdir(self) -> Path:
        """The workdir as the folder that holds the embedded MLflow store."""
        if "://" in self.workdir:
            raise ConfigError(
                f"config key 'mlflow.tracking_uri' is not set and workdir {self.workdir} is a URI, "
                "where the embedded SQLite store cannot live: set mlflow.tracking_uri (or "
                "$MLFLOW_TRACKING_URI) to your MLflow server"
            )
        return Path(self.workdir).resolve()


class _Loader(yaml.SafeLoader):
    """YAML without its own date parsing: dates reach the typed config as text, so that an
    impossible one (2026-02-30) is reported with its key."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set kmeans.k=6")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        quoted = raw.replace("\\", "\\\\").replace('"', '\\"')
        raise ConfigError(
            f"--set {item!r}: the value is not valid YAML ({problem}): to give it as text, quote it, "
            f"e.g. --set '{key.strip()}=\"{quoted}\"'"
        ) from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys (``kmeans.k=6``) in a nested dict; values are parsed as YAML scalars."""
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: config key {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def _key(error: dict[str, Any], data: Any) -> str:
    """The config key of ``error``: its location's parts that are keys of ``data`` or could be
    (union members, e.g. "constrained-int", also appear in the location)."""
    parts, node = [], data
    for part in error["loc"]:
        if isinstance(node, dict) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(part, int) or str(part).isidentifier():
            parts.append(str(part))
            listed = isinstance(node, list) and isinstance(part, int) and part < len(node)
            node = node[part] if listed else None
    return ".".join(parts)


def _hint(key: str, error: dict[str, Any]) -> str:
    """What to do beyond pydantic's message, for the mistakes YAML and dates invite."""
    if ":" in key:
        return "; in YAML a mapping needs a space after each colon, e.g. kmeans.k={min: 3, max: 8}"
    if error["type"].startswith("date") and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(error.get("input"))):
        return "; write dates as YYYY-MM-DD"
    return ""


def _describe(errors: list[dict[str, Any]], data: dict[str, Any]) -> str:
    """One line per offending key; of a union's errors, the one about the value rather than its type."""
    chosen: dict[str, dict[str, Any]] = {}
    for error in errors:
        key = _key(error, data)
        current = chosen.get(key)
        if current is None or (
            current["type"].endswith(("_type", "_parsing"))
            and not error["type"].endswith(("_type", "_parsing"))
        ):
            chosen[key] = error
    # A union's "not this type" beside errors inside the value: the value took the other member.
    inside = {key for key in chosen if any(other.startswith(f"{key}.") for other in chosen)}
    lines = []
    for key, error in chosen.items():
        if key in inside and error["type"].endswith("_type"):
            continue
        if error["type"] == "extra_forbidden":
            problem = " does not exist: remove it or check its spelling (see conf/default.yaml)"
        else:
            problem = f": {error['msg']} (got {error.get('input')!r})"
        lines.append(f"config key '{key}'{problem}{_hint(key, error)}")
    return "\n".join(lines)


def build_config(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Validate a config dict (after overrides), naming every offending key."""
    data = apply_overrides(data, overrides or [])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), data)) from None


def load_config(path: str | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (or the embedded defaults when ``path`` is None)."""
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {path} not found: pass --config with an existing YAML file")
        try:
            data = yaml.load(file.read_text(), Loader=_Loader) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return build_config(data, overrides)


def config_to_yaml(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
