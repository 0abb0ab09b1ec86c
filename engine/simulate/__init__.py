"""Simulation: a scripted case on a virtual clock, through the real engine.

``script`` reads and checks a simulation script; ``run`` replays it against a
throw-away database with the engine's own service and tick.
"""
