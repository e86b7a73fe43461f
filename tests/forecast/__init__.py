"""Tests of cxmon.forecast."""
