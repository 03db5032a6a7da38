"""What a run takes from earlier runs: the previous verified run, drift, waivers, retention, the
journal baseline."""
