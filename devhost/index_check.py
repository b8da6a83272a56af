"""Index an app as the real Python worker does, without the Functions host: `python -m devhost.index_check APP_DIR`.

The worker's `index_function_app` + `process_indexed_function` (azure-functions-runtime, the worker for
Python 3.13+) are stricter than `FunctionApp.get_functions()`: each parameter must match a binding name and
each annotation its binding type. A deployment that fails here fails in Azure with "0 functions loaded".
Needs azure-functions-runtime==1.3.0 (its module paths are private), so it runs in its own venv on 3.13+.
Exit code 0 and "indexed OK: N functions" when the app loads; 1 and the worker's error otherwise.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


class _Message:
    """Stands in for the worker's protobuf message classes (the host passes them in at run time)."""

    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


class _BindingInfo(_Message):
    # protobuf enum values: Direction in/out/inout = 0/1/2, DataType undefined = 0
    inout = 2
    out = 1
    undefined = 0


PROTOS = types.SimpleNamespace(
    BindingInfo=_BindingInfo,
    RpcFunctionMetadata=type("RpcFunctionMetadata", (_Message,), {}),
    RpcRetryOptions=type("RpcRetryOptions", (_Message,), {}),
)


def index(app_dir: Path) -> list[str]:
    """The names of the functions the worker indexes in `app_dir`; raises the worker's error if it refuses."""
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry
    from azure_functions_runtime.loader import index_function_app, process_indexed_function

    sys.path.insert(0, str(app_dir))
    load_binding_registry()  # the worker does this when the host initialises it
    indexed = index_function_app(str(app_dir / "function_app.py"))
    metadata, _ = process_indexed_function(PROTOS, Registry(), indexed, str(app_dir))
    return [m.name for m in metadata]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devhost.index_check APP_DIR", file=sys.stderr)
        return 2
    app_dir = Path(argv[0]).resolve()
    try:
        names = index(app_dir)
    except Exception as exc:  # the worker's own errors (FunctionLoadError, ImportError, ...) are the result
        print(f"indexing failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name in sorted(names):
        print(name)
    print(f"indexed OK: {len(names)} functions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
