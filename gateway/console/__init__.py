"""The security officers' and CIOs' web console: static pages at /console that call /api/v1/.

Keep this file free of imports: gateway.api.session imports gateway.console.cookie.
"""
