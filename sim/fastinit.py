"""A faster ``__init__`` for frozen, slotted dataclasses (the messages on the hot path).

A frozen dataclass's generated ``__init__`` stores every field with ``object.__setattr__`` (its
own ``__setattr__`` refuses). :func:`fast_init` swaps in an ``__init__`` with the same signature
that stores through the fields' slot descriptors instead, about twice as fast for a message of
several fields. Nothing else changes: the instances are the same in every respect (fields,
``==``, ``hash``, ``repr``, pickling, immutability), and the new signature is checked against
the dataclass's own when the class is decorated.

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Ping:
        n: int
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def fast_init(cls: T) -> T:
    """Give the frozen, slotted dataclass ``cls`` a descriptor-storing ``__init__`` (same signature)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init: {cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"fast_init: {cls.__name__} has a __post_init__")
    fields = dataclasses.fields(cls)
    namespace: dict[str, Any] = {}
    args, body = [], []
    for i, f in enumerate(fields):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is not a plain positional field")
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            namespace[f"_d{i}"] = f.default
            args.append(f"{f.name}=_d{i}")
        namespace[f"_s{i}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        body.append(f"    _s{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)  # the way dataclasses builds its own __init__
    init = namespace["__init__"]
    original = cls.__dict__["__init__"]
    if _shape(init) != _shape(original):
        raise TypeError(f"fast_init: {cls.__name__}: {inspect.signature(init)} != {inspect.signature(original)}")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = original.__doc__
    cls.__init__ = init  # type: ignore[misc]
    return cls


def _shape(fn: Any) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults of a function's parameters (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
