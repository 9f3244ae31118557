"""The Pleo Export API sandbox: a faithful local simulator."""
