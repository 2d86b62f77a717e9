"""Shared pytest configuration: test tiers as markers."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running configurations (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "sim: needs Verilator (RTL simulation)")
