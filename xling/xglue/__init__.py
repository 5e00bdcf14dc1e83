"""Zero-shot XGLUE evaluation: task specs, metrics, runners, scoring and reports."""
