"""Trigger adapters: one blueprint module per function family.

Each handler parses its trigger input, calls one function of `shared`, and turns the result into a response.
"""
