"""The simulated city fleet used by `dunewatch demo`; everything in it is labelled simulated."""
