"""actors: the live twin. Ray actors host camera shards, road units, patrol teams and the
brain as thin wrappers over :mod:`twin` classes (issue #4)."""
