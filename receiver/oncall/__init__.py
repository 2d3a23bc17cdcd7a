"""On-call: people, rotations and their iCal feed."""
