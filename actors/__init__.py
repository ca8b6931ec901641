"""actors: the live twin. The brain (dispatcher) and shards of cameras, road units and patrol
teams — plain classes over :mod:`twin`, hosted in Ray actors by :mod:`actors.host` (each shard
holds the entities of a group of areas) or in this process (tests, notebooks, ``--no-ray``)."""
