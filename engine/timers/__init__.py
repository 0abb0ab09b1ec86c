"""Timers: durable deadlines, the tick that fires them, ladders and calendars.

``schedule`` plans the timer rows a transition starts and cancels; ``tick`` claims due
rows and fires them in batches (``batch`` plans a batch, ``sql`` holds its statements);
``escalations`` records reminders and ladder steps and their acknowledgement;
``calendar`` does business-day arithmetic in the workflow's zone.
"""
