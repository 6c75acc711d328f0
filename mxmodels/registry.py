"""Model registry: `@register_model` on a factory, `get_model(name)`, `list_models(pattern)`."""
import difflib
import fnmatch

_MODELS = {}


def register_model(fn):
    """Register a factory under its function name; registering a name twice is an error."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model '{name}' is registered twice")
    _MODELS[name] = fn
    return fn


def list_models(pattern="*"):
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def get_model(name, **kwargs):
    try:
        factory = _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model '{name}'.{hint} Valid names: {', '.join(list_models())}") from None
    return factory(**kwargs)
