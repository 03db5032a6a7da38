"""Facts first: the SSH transport, the collector, its framed sections, and one module per fact
family (model and parser)."""
