"""referral-engine: a workflow engine for multi-agency referral and exit work."""

__version__ = "0.1.0"
