"""The PostgreSQL release whose behaviour reeldb follows, as ``version()``, ``SHOW
server_version`` and the wire's startup report name it (read by the catalog, the settings
registry and the server alike)."""

SERVER_VERSION = "16.4"
SERVER_VERSION_NUM = "160004"
