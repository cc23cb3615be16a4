"""GraphQL resolvers and what they read through: the field resolvers (``reads``,
``writes``), the per-request context and dataloaders, the look-ahead and planning that
turn a selection into one storage read, and compiled plans for the common queries."""
