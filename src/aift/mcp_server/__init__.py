"""aift's knowledge bases over the Model Context Protocol, built on the official `mcp`
SDK: one server definition (`tools.py`) served two ways — streamable HTTP at `/mcp`,
mounted by the API behind its authentication (`http.py`), and stdio for desktop clients
(`aift mcp`, `stdio.py`). Every call runs as its caller, so it sees exactly what the
REST API would show that user."""
