"""The sandbox: launcher (parent), child (inside), wire format (both sides)."""
