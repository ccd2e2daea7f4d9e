"""The dashboard: the overview, customer list and customer 360 pages, and the static report.

Presentation only: data comes from the Engine's aggregates and reads; troth.api serves the pages.
"""

from troth.dashboard.overview import overview
from troth.dashboard.report import write_report

__all__ = ["overview", "write_report"]
