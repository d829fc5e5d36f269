"""Typed readers of config.json values, shared by the config modules: each names the key it refuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError

Config = Mapping[str, Any]


def _first(cfg: Config, *keys: str) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return None


def _int(cfg: Config, *keys: str, default: int | None = None, minimum: int = 1) -> int:
    v = _first(cfg, *keys)
    if v is None:
        if default is None:
            raise ConfigError(f"config is missing {keys[0]!r} (also looked for {list(keys[1:])})")
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise ConfigError(f"config field {keys[0]!r} must be an integer, got {v!r}")
    if int(v) < minimum:
        raise ConfigError(f"config field {keys[0]!r} must be >= {minimum}, got {v!r}")
    return int(v)


def _opt_int(cfg: Config, *keys: str, minimum: int = 0) -> int | None:
    v = _first(cfg, *keys)
    return None if v is None else _int(cfg, *keys, minimum=minimum)


def check_multiple(key: str, value: int, of_key: str, of: int) -> None:
    """A ConfigError naming both fields unless `of` divides `value` (heads per KV head, per group...)."""
    if value % of:
        raise ConfigError(f"{key} ({value}) is not a multiple of {of_key} ({of})")


def _bool(cfg: Config, key: str, default: bool = False) -> bool:
    v = cfg.get(key)
    return default if v is None else bool(v)


def _per_layer(cfg: Config, key: str, n: int) -> list[Any] | None:
    v = cfg.get(key)
    if isinstance(v, Sequence) and not isinstance(v, str):
        items = list(v)
        if len(items) < n:
            raise ConfigError(f"config field {key!r} has {len(items)} entries but num_hidden_layers is {n}")
        return items[:n]  # trailing entries describe MTP / next-n layers
    return None


def without_family_keys(cfg: Config, keys: Iterable[str], layer_type: str) -> dict[str, Any]:
    """The config minus the keys a family reader consumes and minus its own `layer_types` entries, for the
    check of keys no family models (config_keys.check_unmodelled_keys)."""
    drop = frozenset(keys)
    out = {k: v for k, v in cfg.items() if k not in drop}
    types = cfg.get("layer_types")
    if isinstance(types, Sequence) and not isinstance(types, str):
        out["layer_types"] = [t for t in types if t != layer_type]
    return out


def _ints(key: str, items: Any) -> list[int]:
    """A config list of layer indices / flags as ints, or a ConfigError naming the key."""
    try:
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise TypeError
        return [int(str(x).strip()) if isinstance(x, str) else int(x) for x in items]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config field {key!r} must be a list of integers, got {items!r}") from e
