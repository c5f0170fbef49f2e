"""Real channels for electronic service: SMTP (``smtp.py``) and SMPP 3.4 (``smpp.py``)."""
