"""A Conveyor client for Python: submit tasks to a Conveyor broker and collect their results.

Written from docs/PROTOCOL.md alone, with pyzmq as its only dependency. It speaks protocol version 3
(CVY3) and version 2 (CVY2); a version-3 client that meets a version-2 broker switches by itself.

    from conveyor_client import Client, TaskOptions
    with Client("tcp://127.0.0.1:5555") as client:
        task_id = client.submit("echo", {"hello": "world"}, options=TaskOptions(priority=5))
        print(client.result(task_id, timeout=30).value)

``conveyor_client.protocol`` holds the encoders and decoders (no sockets, no pyzmq needed);
``conveyor_client.client`` the ``Client``; ``python -m conveyor_client`` (or the ``conveyor-client``
script) checks a broker end to end.
"""

__version__ = "0.1.0"   # the same as the Swift package's `conveyor --version`

from .protocol import (  # noqa: E402  (after __version__, which .client reads)
    CRITICAL, DEFAULT_OPTIONS, KNOWN_STATES, KNOWN_STATUSES, MAX_GROUPS, MAX_IDENTIFIER_BYTES, TAG, TAG_V2,
    TAGS, TaskOptions, decode_dispatch_meta, hello_body, pack_fields, pack_tagged, parse, unpack_fields,
    unpack_tagged, well_formed,
)
from .client import (  # noqa: E402
    BrokerProtocolError, BrokerTimeout, Client, ConveyorError, Result, StatusReport,
)

__all__ = [
    "__version__",
    # the client
    "Client", "Result", "StatusReport", "TaskOptions", "DEFAULT_OPTIONS",
    "ConveyorError", "BrokerTimeout", "BrokerProtocolError",
    # the wire format
    "TAG", "TAG_V2", "TAGS", "CRITICAL", "MAX_GROUPS", "MAX_IDENTIFIER_BYTES", "KNOWN_STATUSES", "KNOWN_STATES",
    "pack_fields", "unpack_fields", "pack_tagged", "unpack_tagged", "parse", "well_formed",
    "decode_dispatch_meta", "hello_body",
]
