"""Boards as data, synthesis (yosys), the ECP5 and Vivado flows, board shells."""
