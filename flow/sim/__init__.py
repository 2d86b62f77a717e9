"""Execution and verification: numpy reference, Verilator RTL simulation, C simulation."""
