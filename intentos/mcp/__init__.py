"""The Model Context Protocol: MCP servers as intentos apps, and intentos as an MCP server.

MCP servers as apps: `config` (the `mcp_servers:` entries) → `connection` (each server's live session) → `apps`
(an app of each server's tools, whose schemas `schema` makes models of). intentos as an MCP server: `server`
(`intentos mcp serve`), with who may say yes to a step in `confirmation`.
"""
