"""logharbor: centralized log collection and management (sdk, agent, server, ui, cli)."""

__version__ = "0.1.0"
