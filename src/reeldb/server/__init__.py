"""``reeldb serve``: the Postgres wire protocol v3 over a reeldb database.

- ``protocol``: messages as bytes, no sockets;
- ``types``: type OIDs, text and binary values;
- ``conn``: one client's state (simple and extended query, transaction status);
- ``server``: asyncio, one worker thread per client.
"""
