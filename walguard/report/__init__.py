"""Writers of a run's outputs: results.json, the terminal summary, the HTML report's columns."""
