"""Payments domain (pure, no I/O): periods and schedules, fees, allocation order, UK working days,
statements. The payments service and the payment workflows both import it."""
