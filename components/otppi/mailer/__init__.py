"""The mailer component: the email outbox sent through a pool of SMTP accounts."""
