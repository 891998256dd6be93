"""Brokers the collector can start for itself: mosquitto supervised on loopback, or embedded."""
