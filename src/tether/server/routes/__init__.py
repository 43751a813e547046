"""The app's routers: the JSON API (runs, schedules, workflows) and the web pages."""
