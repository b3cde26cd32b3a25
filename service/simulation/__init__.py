"""What-if simulation of policy changes over stored verifications."""
