"""The MCP server for agents (``kb mcp``): the ``search`` and ``ask`` tools over stdio or
streamable HTTP, on the official ``mcp`` SDK, acting as the user of an API token.

- :mod:`.access`: who the caller is (the REST API's tokens and role check);
- :mod:`.tools`: the tools' work: the REST API's search and ask, serialised the same way;
- :mod:`.server`: the MCP server, the HTTP bearer gate and the two transports.
"""
