"""Tests of the mailer component."""
