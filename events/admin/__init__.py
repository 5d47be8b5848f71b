"""The operators' admin (Django's autodiscovery imports this package): event types,
clients, subscriptions and dead letters, each registered by its own module.
"""

from django.contrib import admin

from events.admin import clients, dead_letters, event_types, subscriptions  # noqa: F401

admin.site.site_header = "Streamsite"
admin.site.site_title = "Streamsite"
admin.site.index_title = "Event bus administration"
admin.site.site_url = "/dashboard/"  # "View site": the live dashboard
