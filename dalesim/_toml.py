"""A sweep given as a dict, written as TOML text (the subset sweep files use: tables, strings,
numbers, booleans, lists, and [[sweep.zip]] arrays of tables)."""
import math


def _value(v, key):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"sweep key {key!r}: {v} is not a finite number")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        return _value(v.tolist(), key)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x, key) for x in v) + "]"
    raise TypeError(f"sweep key {key!r}: cannot write a {type(v).__name__} as TOML (numbers, strings, booleans, "
                    "lists and tables)")


def _key(k):
    return k if k.replace("_", "").replace("-", "").isalnum() else _value(k, k)


def dumps(sweep):
    """TOML text of a nested dict (top-level scalars first, then each table)."""
    lines = []

    def table(d, prefix):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_table_list(v)}
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {_value(v, prefix + k)}")
        for k, v in d.items():
            name = prefix + _key(k)
            if isinstance(v, dict):
                lines.append(f"\n[{name}]")
                table(v, name + ".")
            elif _is_table_list(v):
                for item in v:
                    lines.append(f"\n[[{name}]]")
                    table(item, name + ".")

    table(sweep, "")
    return "\n".join(lines) + "\n"


def _is_table_list(v):
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)
