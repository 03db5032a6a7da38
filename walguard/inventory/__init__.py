"""Ansible inventories read as data: the readers (YAML, INI, ansible-inventory), the one builder,
--limit."""
