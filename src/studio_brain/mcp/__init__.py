"""The Model Context Protocol entry point: agents read the studio and propose, over stdio or HTTP.

A thin translation of :mod:`studio_brain.services.agent_desk` onto the official MCP SDK (``mcp``):
``tools.py`` the catalogue, ``server.py`` the SDK server, ``http.py`` the authenticated ``/mcp`` mount,
``stdio.py`` the ``studio-brain mcp`` process. See docs/agents.md.
"""
