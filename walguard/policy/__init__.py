"""Policy as data: the keys an audit expects, their defaults and their validators."""
