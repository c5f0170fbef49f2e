"""Yunting (云庭): online hearings and electronic service for courts."""

__version__ = "0.1.0"
