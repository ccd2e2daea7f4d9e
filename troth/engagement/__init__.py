"""Engagement: per-customer features, and (next) stages, attributes, the card and the ladder."""

from troth.engagement.features import FEATURE_DOCS, customer_features

__all__ = ["FEATURE_DOCS", "customer_features"]
