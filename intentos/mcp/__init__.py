"""The Model Context Protocol: MCP servers as intentos apps (apps), intentos as an MCP server."""
