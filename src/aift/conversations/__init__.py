"""Chat conversations kept in the metadata store (the web UI's chat history)."""
