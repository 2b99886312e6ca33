"""SQL text the features run through the :class:`~logharbor.server.engine.store.base.Store`.

One module per feature; each builds statements from names quoted by ``sqlsafe`` and takes every
value as a ``{name:Type}`` parameter. Keeping the text here (and in the query compilers) means a
schema change is made, and reviewed, in one folder (issue #23).
"""
