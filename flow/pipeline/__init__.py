"""The build pipeline: steps, report.json and report.html."""
