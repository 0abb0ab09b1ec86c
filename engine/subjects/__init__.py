"""Subjects: the person a case is about, kept apart from the case, and re-referral linking.

This package owns the subject record (names in every spelling given, date or year of
birth, identifiers, locality), the blocking keys that keep candidate search fast, the
scoring of candidate matches with its reasons, and the link/reject decisions that
police and coordinators take on them. A subject is visible only to the roles the case's
definition names (``subjects:``), never to the referrer by default; candidates tell the
caller about an earlier case only its dates, workflow and closure outcome.
"""
