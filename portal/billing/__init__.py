"""Billing: what each user's sessions cost, per month or any range, by SQL aggregates.

``rates`` (prices), ``periods`` (months and days in the configured zone), ``report`` (the usage
query), ``export`` (CSV), ``limits`` (what the hub's pre-spawn hook asks).
"""

from portal.billing.periods import month_bounds, month_of
from portal.billing.report import UsageRow, monthly_report, usage_report

__all__ = ["UsageRow", "month_bounds", "month_of", "monthly_report", "usage_report"]
