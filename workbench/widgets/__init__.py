"""Views over engine values: text, static HTML and anywidget front ends.

Every view is a function of a value (a PlanTree, a Result); each bundle
carries ``text/plain`` and escaped ``text/html`` besides any widget, so an
exported notebook, or one opened without the widget front end, still shows it.
Widget JavaScript ships inline (anywidget ESM strings): no CDN, no npm.
"""
