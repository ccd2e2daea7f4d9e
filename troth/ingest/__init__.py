"""Ingestion: Segment HTTP payloads and bulk files turned into stored events and rejects."""
