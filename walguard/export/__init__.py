"""`walguard export`: a finished run directory as a document another tool reads.

walguard.export.run_input reads the run as hostile input (a private copy that follows no link,
its results.json checked, every evidence file it cites hashed and held against the signed
manifest, its signature verified when a CA is given); walguard.export.oscal turns what it read
into an OSCAL Assessment Results document. Nothing of the run is executed or interpreted beyond
that.
"""
